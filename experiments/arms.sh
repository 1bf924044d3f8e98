# Sourced by the judge scripts (galetto_judge.sh, judge_21r.sh) for their NAME=MODEL arguments.
# arm_split SCRIPT ARM [RESERVED]: sets ARM_NAME and ARM_MODEL. Refused with exit 2 and one line on stderr: an ARM
# without "=", a name other than letters, digits and _ (names become file and folder names), the name RESERVED.
arm_split() {
  local script=$1 arm=$2 reserved=${3:-}
  [[ $arm == *=* ]] || { echo "$script: $arm: expected NAME=MODEL" >&2; exit 2; }
  ARM_NAME=${arm%%=*}
  ARM_MODEL=${arm#*=}
  if [[ ! $ARM_NAME =~ ^[A-Za-z0-9_]+$ || $ARM_NAME == "$reserved" ]]; then
    echo "$script: $ARM_NAME: a name is letters, digits and _${reserved:+ (not $reserved)}" >&2
    exit 2
  fi
}

# arms_read SCRIPT RESERVED ARM...: each ARM is NAME=MODEL with MODEL a .safetensors model beside its .json sidecar;
# appends NAME to the caller's NAMES array and MODEL to its MODELS. A bad ARM or a missing file exits 2 with one line
# (RESERVED: a name taken by the caller, or "").
arms_read() {
  local script=$1 reserved=$2 pair
  shift 2
  for pair in "$@"; do
    arm_split "$script" "$pair" "$reserved"
    [[ -f $ARM_MODEL && -f ${ARM_MODEL%.safetensors}.json ]] || {
      echo "$script: $ARM_MODEL: not found (needs its .json)" >&2; exit 2; }
    NAMES+=("$ARM_NAME")
    MODELS+=("$ARM_MODEL")
  done
}
