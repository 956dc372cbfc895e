#!/usr/bin/env bash
# `yuan train` as a user sees it: flag errors (one line, exit 2), data errors
# (exit 1 naming FILE:LINE), a short run writing the adapter, loss CSV and
# plot, and Ctrl-C: the first stops after the step and writes a checkpoint
# (exit 0, "resume with --resume FILE"), --resume finishes the run; a
# second Ctrl-C quits at once (exit 130).
# usage: train_test.sh YUAN_BINARY RANDOM_MODEL
set -u
yuan=$1 model=$2
dir=$(mktemp -d /tmp/yuan_train_test.XXXXXX)
trap 'rm -rf "$dir"' EXIT
fail=0
check() {  # check NAME EXPECTED_RC CMD...
  local name=$1 want=$2; shift 2
  out=$("$@" 2>"$dir/err"); rc=$?
  err=$(cat "$dir/err")
  if [ "$rc" != "$want" ]; then
    echo "FAIL $name: exit $rc, expected $want; stderr: $err"; fail=1
  fi
}
one_line_error() {
  if [ "$(printf '%s\n' "$err" | grep -c .)" != "1" ]; then
    echo "FAIL $1: expected one stderr line, got: $err"; fail=1
  fi
}
expect_err() {  # expect_err NAME PATTERN: stderr matches the glob
  case "$err" in $2) ;; *) echo "FAIL $1: stderr does not match '$2': $err"; fail=1;; esac
}

data=$dir/chats.jsonl
for i in 1 2 3 4 5 6 7 8; do
  echo "{\"messages\": [{\"role\": \"user\", \"content\": \"question $i\"}, {\"role\": \"assistant\", \"content\": \"answer number $i.\"}]}"
done > "$data"
common=(-m "$model" --data "$data" -c 128 --lora-rank 4 -t 2 --warmup 1)

check "help" 0 "$yuan" train --help
case "$out" in *"--lora-rank"*"--resume"*) ;; *) echo "FAIL help: flags missing: $out"; fail=1;; esac
check "missing data" 2 "$yuan" train -m "$model" -o "$dir/a.yadp"; one_line_error "missing data"
check "missing output" 2 "$yuan" train -m "$model" --data "$data"; one_line_error "missing output"
check "bad mode" 2 "$yuan" train "${common[@]}" -o "$dir/a.yadp" --mode half; one_line_error "bad mode"
check "bad number" 2 "$yuan" train "${common[@]}" -o "$dir/a.yadp" --steps many; one_line_error "bad number"
check "bad rank" 2 "$yuan" train "${common[@]}" -o "$dir/a.yadp" --lora-rank 0; one_line_error "bad rank"
check "partial without layers" 2 "$yuan" train "${common[@]}" -o "$dir/a.gguf" --mode partial
one_line_error "partial without layers"
check "missing model" 1 "$yuan" train -m /no/such/model.gguf --data "$data" -o "$dir/a.yadp"
one_line_error "missing model"; expect_err "missing model" "*/no/such/model.gguf*"

bad=$dir/bad.jsonl
{ head -n 2 "$data"; echo '{"messages": [oops'; } > "$bad"
check "bad line" 1 "$yuan" train -m "$model" --data "$bad" -o "$dir/a.yadp" -c 128
one_line_error "bad line"; expect_err "bad line" "*bad.jsonl:3*"
check "skip bad lines" 0 "$yuan" train -m "$model" --data "$bad" -o "$dir/skip.yadp" -c 128 --steps 1 \
  --skip-bad-lines

# A 2-step run: the adapter, the CSV (header + 2 rows) and the PNG plot.
check "two steps" 0 "$yuan" train "${common[@]}" -o "$dir/two.yadp" --steps 2
[ "$(printf '%s\n' "$err" | grep -c '^step [12]/2 ')" = "2" ] ||
  { echo "FAIL two steps: expected 2 progress lines: $err"; fail=1; }
# rank 4 on 7 projections of 2 layers: 4 * (in + out) summed = 7424 (see
# tests/c_api/train_api_test.c).
expect_err "two steps" "*lora, 7424 trainable parameters; 8 examples; 2 steps*"
expect_err "two steps" "*wrote $dir/two.yadp*"
[ -s "$dir/two.yadp" ] || { echo "FAIL two steps: no adapter"; fail=1; }
[ "$(wc -l < "$dir/two.yadp.csv")" = "3" ] || { echo "FAIL two steps: CSV is not header + 2 rows"; fail=1; }
head -c 4 "$dir/two.yadp.png" | grep -q PNG || { echo "FAIL two steps: no PNG plot"; fail=1; }
# The adapter is usable by the runtime.
check "adapter inspect" 0 "$yuan" adapter inspect "$dir/two.yadp"
case "$out" in *"rank:          4"*"steps:         2"*) ;; *) echo "FAIL adapter inspect: $out"; fail=1;; esac

# Full training from random weights writes a model that runs.
check "full random init" 0 "$yuan" train "${common[@]}" -o "$dir/full.gguf" --mode full --random-init \
  --steps 1
check "run trained model" 0 "$yuan" run -m "$dir/full.gguf" -p "question" -n 2 --temp 0

# Ctrl-C: wait for the first progress line, interrupt, expect a checkpoint.
# A step of this model takes a few milliseconds, so the run is long enough
# (200 steps) that the interrupt lands well before its end.
long=(train "${common[@]}" -o "$dir/long.yadp" --steps 200 -b 2)
"$yuan" "${long[@]}" 2>"$dir/long.err" &
pid=$!
for _ in $(seq 1 3000); do
  grep -q '^step ' "$dir/long.err" 2>/dev/null && break
  sleep 0.01
done
kill -INT "$pid"
wait "$pid"; rc=$?
err=$(cat "$dir/long.err")
[ "$rc" = "0" ] || { echo "FAIL sigint: exit $rc: $err"; fail=1; }
expect_err "sigint" "*stopped at step*resume with --resume $dir/long.yadp.ckpt*"
[ -s "$dir/long.yadp.ckpt" ] || { echo "FAIL sigint: no checkpoint"; fail=1; }
stopped=$(printf '%s\n' "$err" | sed -n 's/.*stopped at step \([0-9]*\) of.*/\1/p')
check "resume" 0 "$yuan" "${long[@]}" --resume "$dir/long.yadp.ckpt"
[ -n "$stopped" ] && [ "$stopped" -lt 200 ] || { echo "FAIL sigint: stopped at '$stopped', not before the end"; fail=1; }
expect_err "resume" "*resuming*at step $stopped of 200*step 200/200*wrote $dir/long.yadp*"
[ "$(wc -l < "$dir/long.yadp.csv")" = "201" ] || { echo "FAIL resume: CSV is not header + 200 rows"; fail=1; }

# A second Ctrl-C quits at once, with the shell's status for SIGINT. (The
# second is sent once the first was seen: two sent together may merge.) The
# first stops training after the micro-batch in progress and then writes the
# checkpoint, so micro-batches here are long (8 rows of ~870 tokens: about
# 0.5 s each, seconds under sanitizers) for the second to land well before.
slow=$dir/long-chats.jsonl
for i in 1 2 3 4 5 6 7 8; do
  printf '{"messages": [{"role": "user", "content": "question %s"}, {"role": "assistant", "content": "' "$i"
  for _ in $(seq 1 50); do printf 'answer number %s. ' "$i"; done
  printf '"}]}\n'
done > "$slow"
"$yuan" train -m "$model" --data "$slow" -c 1024 --lora-rank 4 -t 2 --warmup 1 \
  -o "$dir/quit.yadp" --steps 10 -b 8 2>"$dir/quit.err" &
pid=$!
for _ in $(seq 1 1200); do
  grep -q '^step ' "$dir/quit.err" 2>/dev/null && break
  sleep 0.05
done
kill -INT "$pid"
for _ in $(seq 1 1000); do
  grep -q 'Ctrl-C again' "$dir/quit.err" 2>/dev/null && break
  sleep 0.01
done
kill -INT "$pid"
wait "$pid"; rc=$?
[ "$rc" = "130" ] || { echo "FAIL double sigint: exit $rc: $(cat "$dir/quit.err")"; fail=1; }
[ ! -e "$dir/quit.yadp.ckpt" ] || { echo "FAIL double sigint: a checkpoint was written"; fail=1; }

[ "$fail" = "0" ] && echo "all train CLI checks passed"
exit "$fail"
