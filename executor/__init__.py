"""The stateless executor (see ``executor.worker``); run one with ``python -m executor``."""
