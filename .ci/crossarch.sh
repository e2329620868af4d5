#!/usr/bin/env bash
# Cross-architecture golden check: the golden workload (tests/golden/workload.py) must give
# bit-identical output natively (x86-64) and under an emulated aarch64 CPU, and both must
# equal the committed tests/golden/golden.txt.
#
#   .ci/crossarch.sh            # from anywhere; exit 0 = identical everywhere
#
# Steps: (1) build/refresh the crossarch environment (qemu-user-static, arm64 sysroot,
# aarch64 + native site dirs with numpy/numba/llvmlite and valori-store's other runtime
# dependencies at identical versions; idempotent, seconds when warm); (2) compare.sh on the
# workload (native vs aarch64 stdout, '#' lines ignored); (3) diff each output against
# golden.txt. valori-store itself is pure Python and is used from src/ via PYTHONPATH.
#
# Needs: Debian 12 x86-64, root (apt-get), the Debian mirror and PyPI reachable.
# Environment:
#   CROSSARCH_TOOLS   folder with setup.sh/compare.sh/run-*.sh (default: tools/crossarch in
#                     the repo if present, else ../shared/tools/crossarch beside the clone,
#                     else /work/shared/tools/crossarch)
#   CROSSARCH_CPU     qemu CPU model for the native-vs-aarch64 comparison (default neoverse-n1)
#   CROSSARCH_EXTRA   extra emulated runs checked against golden.txt, space-separated
#                     QEMU_CPU[:NUMBA_CPU_NAME] entries, e.g. "max:neoverse-v1 cortex-a72".
#                     Under qemu-user LLVM detects a "generic" CPU whatever the model, so
#                     numba's codegen only changes when NUMBA_CPU_NAME is given. Each entry
#                     with a new NUMBA_CPU_NAME costs a cold numba compile (~2-3 min).
#   CROSSARCH_OUT     where outputs are kept (default: a new /tmp/valori-crossarch.XXXXXX)
#   CROSSARCH_PIN_PY  python whose installed versions pin the extra deps (default: the
#                     repo's .venv/bin/python if present; otherwise pyproject's specs are used)
#   CROSSARCH_HOME, CROSSARCH_NUMPY/NUMBA/LLVMLITE ... are passed through to the tools.
# Exit status: 0 identical and golden; 1 a difference; 2 setup or a run failed.
set -uo pipefail
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
WORKLOAD="$REPO/tests/golden/workload.py"
GOLDEN="$REPO/tests/golden/golden.txt"
export CROSSARCH_HOME=${CROSSARCH_HOME:-$HOME/.cache/crossarch}

T0=$SECONDS
ts() { printf '[crossarch.sh %(%H:%M:%S)T +%ss] %s\n' -1 "$((SECONDS - T0))" "$*"; }
die() { echo "crossarch.sh: $*" >&2; exit "${2:-2}"; }

if [[ -z "${CROSSARCH_TOOLS:-}" ]]; then
  for d in "$REPO/tools/crossarch" "$REPO/../shared/tools/crossarch" /work/shared/tools/crossarch; do
    [[ -x "$d/setup.sh" ]] && { CROSSARCH_TOOLS=$d; break; }
  done
fi
[[ -n "${CROSSARCH_TOOLS:-}" && -x "$CROSSARCH_TOOLS/setup.sh" ]] ||
  die "crossarch tools not found; set CROSSARCH_TOOLS to the folder holding setup.sh"
[[ -f "$WORKLOAD" ]] || die "$WORKLOAD missing"
[[ -f "$GOLDEN" ]] || die "$GOLDEN missing"

# ------------------------------------------------------------------ 1. environment
PIN_PY=${CROSSARCH_PIN_PY:-}
if [[ -z "$PIN_PY" && -x "$REPO/.venv/bin/python" ]]; then PIN_PY="$REPO/.venv/bin/python"; fi
# Same numpy/numba/llvmlite as the pinning interpreter (else the tools' defaults).
if [[ -n "$PIN_PY" ]]; then
  for pkg in numpy numba llvmlite; do
    var="CROSSARCH_${pkg^^}"
    [[ -n "${!var:-}" ]] && continue
    v=$("$PIN_PY" -c "import importlib.metadata as m; print(m.version('$pkg'))" 2>/dev/null) && export "$var=$v"
  done
fi
# Runtime dependencies from pyproject.toml other than numpy/numba/llvmlite (pinned by the
# tools): e.g. pydantic, which has a compiled core and so needs the aarch64 wheel.
mapfile -t REQS < <(/usr/bin/python3 - "$REPO/pyproject.toml" "$PIN_PY" <<'EOF'
import re, subprocess, sys, tomllib
deps = tomllib.load(open(sys.argv[1], "rb"))["project"].get("dependencies", [])
pin_py = sys.argv[2]
for spec in deps:
    name = re.match(r"[A-Za-z0-9._-]+", spec).group(0)
    if name.lower().replace("_", "-") in ("numpy", "numba", "llvmlite"):
        continue
    if pin_py:
        r = subprocess.run([pin_py, "-c", f"import importlib.metadata as m; print(m.version({name!r}))"],
                           capture_output=True, text=True)
        if r.returncode == 0 and r.stdout.strip():
            spec = f"{name}=={r.stdout.strip()}"
    print(spec)
EOF
) || die "could not read dependencies from pyproject.toml"

SITE=${CROSSARCH_SITE:-$CROSSARCH_HOME/arm64site}
VENV=${CROSSARCH_NATIVE_VENV:-$CROSSARCH_HOME/x86venv}
STAMP="$CROSSARCH_HOME/valori-store-deps.stamp"
WANT_STAMP="${REQS[*]} | numpy=${CROSSARCH_NUMPY:-} numba=${CROSSARCH_NUMBA:-} llvmlite=${CROSSARCH_LLVMLITE:-}"
deps_present() {   # cheap: installed dist-info in both envs and the same request as last time
  [[ -f "$STAMP" && "$(cat "$STAMP")" == "$WANT_STAMP" ]] || return 1
  local r name
  for r in "${REQS[@]}"; do
    name=$(sed -E 's/[^A-Za-z0-9._-].*//; s/-/_/g' <<<"$r")
    compgen -G "$SITE/${name}-*.dist-info" >/dev/null || compgen -G "$SITE/${name,,}-*.dist-info" >/dev/null || return 1
    "$VENV/bin/python" -c "import importlib.metadata as m; m.version('$name')" 2>/dev/null || return 1
  done
}
ts "setup: $CROSSARCH_TOOLS/setup.sh (numpy ${CROSSARCH_NUMPY:-default} numba ${CROSSARCH_NUMBA:-default}; extra: ${REQS[*]:-none})"
t=$SECONDS
if [[ ${#REQS[@]} -gt 0 ]] && ! deps_present; then
  rm -f "$STAMP"
  "$CROSSARCH_TOOLS/setup.sh" --pip "${REQS[@]}" || die "setup.sh --pip ${REQS[*]} failed"
  echo "$WANT_STAMP" > "$STAMP"
else
  "$CROSSARCH_TOOLS/setup.sh" || die "setup.sh failed"
fi
T_SETUP=$((SECONDS - t))
ts "setup done in ${T_SETUP} s"

# ------------------------------------------------------------------ 2. native vs aarch64
OUT=${CROSSARCH_OUT:-$(mktemp -d /tmp/valori-crossarch.XXXXXX)}
mkdir -p "$OUT"
export PYTHONPATH="$REPO/src"
cd "$REPO" || die "cd $REPO"
grep -v '^#' "$GOLDEN" > "$OUT/golden.facts"
status=0
check_golden() {   # check_golden NAME OUTFILE
  grep -v '^#' "$2" > "$2.facts"
  if diff -u "$OUT/golden.facts" "$2.facts" > "$2.golden.diff"; then
    echo "GOLDEN OK: $1 equals tests/golden/golden.txt ($(wc -l < "$OUT/golden.facts") lines)"
  else
    echo "GOLDEN MISMATCH: $1 differs from tests/golden/golden.txt:"
    head -80 "$2.golden.diff"
    [[ $status -eq 0 ]] && status=1
  fi
}
show_times() { grep '^# time' "$2" 2>/dev/null | sed "s/^/    $1: /"; }

cpu=${CROSSARCH_CPU:-neoverse-n1}
dir="$OUT/$cpu"
mkdir -p "$dir"
ts "compare.sh --cpu $cpu (native x86-64 vs emulated aarch64) -> $dir"
t=$SECONDS
OUTDIR="$dir" "$CROSSARCH_TOOLS/compare.sh" --cpu "$cpu" "$WORKLOAD"
rc=$?
T_COMPARE=$((SECONDS - t))
ts "compare.sh --cpu $cpu: exit $rc in ${T_COMPARE} s"
show_times x86_64 "$dir/x86_64.out"; show_times aarch64 "$dir/aarch64.out"
if [[ $rc -ge 2 ]]; then
  for arch in x86_64 aarch64; do
    [[ -s "$dir/$arch.err" ]] && { echo "---- $arch stderr (tail)"; tail -40 "$dir/$arch.err"; }
  done
  status=2
else
  [[ $rc -eq 1 ]] && status=1
  check_golden "x86_64" "$dir/x86_64.out"
  check_golden "aarch64 (qemu $cpu)" "$dir/aarch64.out"
fi

for entry in ${CROSSARCH_EXTRA:-}; do
  qcpu=${entry%%:*}; ncpu=""
  [[ $entry == *:* ]] && ncpu=${entry#*:}
  name="aarch64 (qemu $qcpu${ncpu:+, NUMBA_CPU_NAME=$ncpu})"
  f="$OUT/extra-${qcpu}${ncpu:+-$ncpu}.out"
  ts "extra run: $name"
  t=$SECONDS
  if env ${ncpu:+NUMBA_CPU_NAME=$ncpu} "$CROSSARCH_TOOLS/run-aarch64.sh" --cpu "$qcpu" "$WORKLOAD" > "$f" 2> "${f%.out}.err"; then
    ts "$name: done in $((SECONDS - t)) s"
    show_times aarch64 "$f"
    check_golden "$name" "$f"
  else
    echo "$name: run failed (exit $?):"; tail -40 "${f%.out}.err"
    status=2
  fi
done

ts "total ${SECONDS}s (setup ${T_SETUP}s); outputs in $OUT; exit $status"
exit $status
