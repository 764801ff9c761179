"""The campaign read whole and looked ahead: the registry at once (`snapshot`) and the early warning's
forecast (`pace`, `forecast`). Below the views and the reminder pass, which both use them: `status`
shows the forecasts, the pass sends the warnings (预警)."""
