# Sourced by .ci/run: `phase NAME CMD...` runs CMD in this shell, timing it; the table prints on exit,
# also when a phase fails (set -e stops the run there, and the table says which phase it was).
# Besides wall seconds it records the CPU seconds (user + sys) of the phase's finished child
# processes: on a shared, loaded machine wall time inflates, CPU time much less, so CPU / cores
# bounds what the phase needs on a quiet machine of the same kind.
_DT_PHASES=()
_DT_CURRENT=""
_DT_START=$SECONDS

_dt_cpu_seconds() {  # user + sys of this shell's waited-for descendants: /proc/<shell>/stat cutime + cstime
  # ($$ is the CI shell even inside $(...); the command after the ")" keeps a space in comm harmless)
  awk -v hz="$(getconf CLK_TCK)" '{ sub(/.*\) /, ""); printf "%.0f", ($14 + $15) / hz }' "/proc/$$/stat"
}

phase() {
  local name="$1" t0=$SECONDS c0
  c0="$(_dt_cpu_seconds)"
  shift
  _DT_CURRENT="$name"
  echo "=== [$(date +%T)] $name"
  "$@"
  _DT_PHASES+=("$(printf '%6ds %7ds  %s' $((SECONDS - t0)) $(($(_dt_cpu_seconds) - c0)) "$name")")
  _DT_CURRENT=""
  echo "=== [$(date +%T)] $name: done in $((SECONDS - t0)) s"
}

_dt_phase_summary() {
  local rc=$?
  echo "=== CI phases (load average $(cut -d' ' -f1-3 /proc/loadavg), $(nproc) cores)"
  echo "  wall  CPU(s)  phase"
  local line
  for line in "${_DT_PHASES[@]}"; do echo "$line"; done
  if [[ -n "$_DT_CURRENT" ]]; then echo "FAILED  $_DT_CURRENT (exit status $rc)"; fi
  printf '%6ds %7ds  total\n' $((SECONDS - _DT_START)) "$(_dt_cpu_seconds)"
}
trap _dt_phase_summary EXIT
