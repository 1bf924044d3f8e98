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

# arm_model_file SCRIPT FILE: FILE (a .safetensors model) and its .json sidecar exist, else exit 2 and one line.
arm_model_file() {
  [[ -f $2 && -f ${2%.safetensors}.json ]] || { echo "$1: $2: not found (needs its .json)" >&2; exit 2; }
}
