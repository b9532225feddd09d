# Sourced by keepalived's hooks in this folder (notify-eip,
# drop-stale-connections): log "MESSAGE" writes to logger(1)
# (journalctl -t sempre-eip) and, when SEMPRE_EIP_LOG is set, to that file
# (the lab reads it).
log() {
  logger -t sempre-eip "$*" 2>/dev/null || true
  [ -n "${SEMPRE_EIP_LOG:-}" ] && echo "$(date -u +%Y-%m-%dT%H:%M:%S.%3NZ) $*" >> "$SEMPRE_EIP_LOG"
  return 0
}
