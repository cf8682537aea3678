class CrashAtStart:
    """Fails while loading its model: the deployment must fail with this message."""

    def __init__(self):
        raise RuntimeError("model file is missing: crash at start on purpose")

    def perform(self) -> int:
        return 0
