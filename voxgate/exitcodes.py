"""The exit codes of every voxgate command, in one place (``--help``, README and user guide
show the same table)."""

EXIT_OK = 0  # success; verify: accepted; identify: a known, authorized speaker
EXIT_ERROR = 1  # an error (bad file, missing model, unreadable store, full disk, ...)
EXIT_USAGE = 2  # wrong command-line usage
EXIT_REJECTED = 3  # verify: rejected; identify: unknown (or not authorized) speaker
EXIT_UNDECIDED = 4  # no decision: not enough speech, or uncertain (MC-dropout spread)
EXIT_LOCKED = 5  # too many failed attempts: wait, or `voxgate profiles unlock`

TABLE = """exit codes:
  0  accepted (verify) / a known, authorized speaker (identify) / success
  1  error (unreadable file, missing model, unusable profile store, full disk, ...)
  2  usage error (wrong options)
  3  rejected (verify) / unknown or not authorized speaker (identify)
  4  undecided: not enough speech, or uncertain
  5  locked: too many failed attempts; wait, or voxgate profiles unlock"""
