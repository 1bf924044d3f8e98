#!/bin/bash
# Takes the shipped model files (checkpoints/*.safetensors, 36 of the tree's 40 MiB on 6 Dec 2026) out of the working
# tree for one device call, whose working tree, data and wheels must fit 64 MiB together, and puts them back after it.
#   bash experiments/device/hold_checkpoints.sh out     # before the call: unstaged and moved into .git/checkpoint_hold
#   bash experiments/device/hold_checkpoints.sh back    # after it: moved back, restaged, SHA-256 checked
#   bash experiments/device/hold_checkpoints.sh status  # "out" or "in" (exit 0), for a script to check
# While they are out, a pre-commit hook refuses every commit: on 4 Dec 2026 a commit made meanwhile dropped the three
# files from the repository (experiments/galetto_rule_g14.md). No device step reads them. The hold lies inside .git,
# which does not travel. Refuses (exit 2, one line) when they are out already, when checkpoints/ has uncommitted
# changes, or when a pre-commit hook of another origin exists.
set -eu
cd "$(git rev-parse --show-toplevel)"
HOLD="$(git rev-parse --absolute-git-dir)/checkpoint_hold"
HOOK="$(git rev-parse --git-path hooks)/pre-commit"
MARK="# hold_checkpoints.sh"
say() { echo "hold_checkpoints: $*" >&2; }

case "${1:-}" in
status)
    [ -d "$HOLD" ] && echo out || echo in ;;
out)
    [ -d "$HOLD" ] && { say "$HOLD exists: the files are out already (run 'back' first)"; exit 2; }
    if ! git diff --quiet -- checkpoints || ! git diff --cached --quiet -- checkpoints; then
        say "checkpoints/ has uncommitted changes: commit or restore them first (nothing was moved)"; exit 2
    fi
    if [ -e "$HOOK" ] && ! grep -q "$MARK" "$HOOK"; then
        say "$HOOK exists and is not this script's: move it aside first (nothing was moved)"; exit 2
    fi
    mapfile -t FILES < <(git ls-files -- 'checkpoints/*.safetensors')
    [ "${#FILES[@]}" -gt 0 ] || { say "no tracked checkpoints/*.safetensors here (nothing was moved)"; exit 2; }
    mkdir -p "$HOLD" "$(dirname "$HOOK")"
    sha256sum -- "${FILES[@]}" > "$HOLD/SHA256SUMS"
    printf '#!/bin/sh\n%s\necho "pre-commit: checkpoints/*.safetensors are held out for a device call; run" \\\n' \
        "$MARK" > "$HOOK"
    printf '  "bash experiments/device/hold_checkpoints.sh back first (a commit now would delete them)" >&2\nexit 1\n' \
        >> "$HOOK"
    chmod +x "$HOOK"
    git rm -q --cached -- "${FILES[@]}"
    mv -- "${FILES[@]}" "$HOLD/"
    echo "held out ${#FILES[@]} file(s) ($(du -sh "$HOLD" | cut -f1)); commits refused until 'back'" ;;
back)
    [ -d "$HOLD" ] || { say "nothing is held ($HOLD does not exist)"; exit 2; }
    mapfile -t FILES < <(cut -d' ' -f3- "$HOLD/SHA256SUMS")
    for f in "${FILES[@]}"; do
        [ -e "$f" ] && { say "$f exists in the tree: move it aside first (nothing was moved back)"; exit 2; }
    done
    for f in "${FILES[@]}"; do mv -- "$HOLD/$(basename "$f")" "$f"; done
    git reset -q -- "${FILES[@]}"
    sha256sum --quiet -c "$HOLD/SHA256SUMS" || { say "SHA-256 differs after the move (the hold is kept)"; exit 1; }
    rm -f -- "$HOOK" "$HOLD/SHA256SUMS"
    rmdir "$HOLD"
    if ! git diff --quiet -- checkpoints; then say "checkpoints/ differs from HEAD after the move back"; exit 1; fi
    echo "put back ${#FILES[@]} file(s); commits allowed again" ;;
*)
    say "usage: hold_checkpoints.sh out|back|status"; exit 2 ;;
esac
