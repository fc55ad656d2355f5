"""Event codes of the event log (DESIGN section 9, ``events.parquet``)."""

EVENT_NAMES = (
    "arrived",
    "admitted",
    "rejected",
    "queued",
    "started",
    "paused",
    "finished",
    "delivered",
    "cancelled",
    "expedited",
)
ARRIVED, ADMITTED, REJECTED, QUEUED, STARTED, PAUSED, FINISHED, DELIVERED, CANCELLED, EXPEDITED = range(
    len(EVENT_NAMES)
)
