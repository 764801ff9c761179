"""The service (`anjian serve`): one process that owns the database and offers every command of the
CLI over HTTP to signed-in officials, with the same outputs, JSON and exit codes.

Above the CLI in the layers: a route runs the very command body the CLI runs (cli/), with the
request's official, the service's clock and its database (`Env.call`), and translates the outcome.
"""
