# Sourced by .ci/run: `phase NAME CMD...` runs CMD in this shell, timing it; the table prints on exit,
# also when a phase fails (set -e stops the run there, and the table says which phase it was).
_DT_PHASES=()
_DT_CURRENT=""
_DT_START=$SECONDS

phase() {
  local name="$1" t0=$SECONDS
  shift
  _DT_CURRENT="$name"
  echo "=== [$(date +%T)] $name"
  "$@"
  _DT_PHASES+=("$(printf '%6ds  %s' $((SECONDS - t0)) "$name")")
  _DT_CURRENT=""
  echo "=== [$(date +%T)] $name: done in $((SECONDS - t0)) s"
}

_dt_phase_summary() {
  local rc=$?
  echo "=== CI phases (wall seconds; load average $(cut -d' ' -f1-3 /proc/loadavg), $(nproc) cores)"
  local line
  for line in "${_DT_PHASES[@]}"; do echo "$line"; done
  if [[ -n "$_DT_CURRENT" ]]; then echo "FAILED  $_DT_CURRENT (exit status $rc)"; fi
  printf '%6ds  total\n' $((SECONDS - _DT_START))
}
trap _dt_phase_summary EXIT
