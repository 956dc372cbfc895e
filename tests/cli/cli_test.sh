#!/usr/bin/env bash
# Behaviour of the `yuan` command as a user sees it: exit codes, one-line
# errors, streaming output, --ids against the golden ids, inspect, bench.
# usage: cli_test.sh YUAN_BINARY RANDOM_MODEL [STORIES_MODEL GOLDEN_FILE]
set -u
yuan=$1 random_model=$2 stories=${3:-} golden=${4:-}
fail=0
check() {  # check NAME EXPECTED_RC CMD...
  local name=$1 want=$2; shift 2
  out=$("$@" 2>/tmp/cli_test_err.$$); rc=$?
  err=$(cat /tmp/cli_test_err.$$)
  if [ "$rc" != "$want" ]; then
    echo "FAIL $name: exit $rc, expected $want; stderr: $err"; fail=1
  fi
}
one_line_error() {  # the last command printed exactly one line on stderr
  if [ "$(printf '%s\n' "$err" | grep -c .)" != "1" ]; then
    echo "FAIL $1: expected one stderr line, got: $err"; fail=1
  fi
}

check "no args" 2 "$yuan"
check "unknown command" 2 "$yuan" frobnicate; one_line_error "unknown command"
check "help" 0 "$yuan" run --help
check "missing -m" 2 "$yuan" run -p hi; one_line_error "missing -m"
check "unknown flag" 2 "$yuan" run -m "$random_model" -p hi --bogus; one_line_error "unknown flag"
check "bad number" 2 "$yuan" run -m "$random_model" -p hi -n lots; one_line_error "bad number"
check "missing value" 2 "$yuan" run -m "$random_model" -p; one_line_error "missing value"
check "missing file" 1 "$yuan" run -m /no/such/model.gguf -p hi; one_line_error "missing file"
case "$err" in *"/no/such/model.gguf"*) ;; *) echo "FAIL missing file: message does not name the path: $err"; fail=1;; esac
printf 'GGUF\003\000\000\000garbage' > /tmp/cli_test_bad.$$.gguf
check "corrupt file" 1 "$yuan" run -m /tmp/cli_test_bad.$$.gguf -p hi; one_line_error "corrupt file"
check "inspect corrupt" 1 "$yuan" inspect /tmp/cli_test_bad.$$.gguf; one_line_error "inspect corrupt"
rm -f /tmp/cli_test_bad.$$.gguf

check "run random" 0 "$yuan" run -m "$random_model" -p "the" -n 8 --temp 0 --ignore-eos
case "$err" in *"generation: 8 tokens"*"t/s"*) ;; *) echo "FAIL run random: no timing line: $err"; fail=1;; esac
check "inspect" 0 "$yuan" inspect "$random_model"
case "$out" in *"general.architecture"*"token_embd.weight"*) ;; *) echo "FAIL inspect: output lacks metadata/tensors"; fail=1;; esac
check "bench missing -m" 2 "$yuan" bench -p 8; one_line_error "bench missing -m"
check "bench bad list" 2 "$yuan" bench -m "$random_model" -t 1,x; one_line_error "bench bad list"
check "bench bad output" 2 "$yuan" bench -m "$random_model" -o xml; one_line_error "bench bad output"
check "bench missing file" 1 "$yuan" bench -m /no/such/model.gguf; one_line_error "bench missing file"
check "bench" 0 "$yuan" bench -m "$random_model" -t 1 -p 8,16 -n 4 -r 2 --bw-mib 16
case "$out" in *"| model"*"pp8"*"pp16"*"tg4"*"read bandwidth, 1 thread:"*"memory "*": peak RSS"*) ;;
  *) echo "FAIL bench: unexpected output: $out"; fail=1;; esac
# --steps: one table per tg row, every step named, and a total beside the
# timed tokens' own time; then the products' rate and the ceiling the other
# steps set, whose two parts must add up to the table's total
check "bench steps" 0 "$yuan" bench -m "$random_model" -t 1 -p 0 -n 4 -r 2 --bw-mib 16 --steps
case "$out" in *"steps "*"tg4 t=1, per token over 8 timed tokens:"*"q/k/v"*"attention"*"gate/up"*"head"*"all steps"*"the timed tokens:"*"the products: "*" GB/s, "*"the steps without weights: "*"at most "*" % of the bound"*) ;;
  *) echo "FAIL bench steps: unexpected output: $out"; fail=1;; esac
parts=$(printf '%s\n' "$out" | awk '/^  all steps/ {t = $3} /^  the products: / {p = $3}
  /^  the steps without weights: / {o = $5} END {d = p + o - t; if (d < 0) d = -d; print (t > 0 && d <= 0.2) ? "ok" : "bad " p " + " o " != " t}')
[[ "$parts" == ok ]] || { echo "FAIL bench steps: the products and the other steps: $parts"; fail=1; }
check "bench json" 0 "$yuan" bench -m "$random_model" -t 1 -p 8 -n 0 -r 1 -o json --bw-mib 16
case "$out" in "["*'"n_prompt": 8'*"]") ;; *) echo "FAIL bench json: $out"; fail=1;; esac
# -d (llama-bench's --n-depth): each test again after a filled context,
# named "tgN @ dD"; a decoding step then reads D more positions of K/V
check "bench depth" 0 "$yuan" bench -m "$random_model" -t 1 -p 8 -n 4 -d 0,40 -r 1 --bw-mib 16
case "$out" in *" pp8 |"*" pp8 @ d40 |"*" tg4 |"*" tg4 @ d40 |"*) ;; *) echo "FAIL bench depth: $out"; fail=1;; esac
check "bench bad depth" 2 "$yuan" bench -m "$random_model" -d x; one_line_error "bench bad depth"
check "bench depth json" 0 "$yuan" bench -m "$random_model" -t 1 -p 0 -n 4 -d 0,40 -r 1 -o json --bw-mib 16
json_out=$out
check "inspect for depth" 0 "$yuan" inspect "$random_model"
# 40 more positions of f16 K and V in every layer, from the file's own
# hyperparameters
python3 -c '
import json, re, sys
recs = json.loads(sys.argv[1])
meta = dict(re.findall(r"llama\.([a-z_.]+) = (\d+)", sys.argv[2]))
n_layer, n_embd = int(meta["block_count"]), int(meta["embedding_length"])
n_head, n_head_kv = int(meta["attention.head_count"]), int(meta["attention.head_count_kv"])
kv_per_pos = 2 * n_layer * n_head_kv * (n_embd // n_head) * 2
assert [(r["n_gen"], r["n_depth"]) for r in recs] == [(4, 0), (4, 40)], recs
assert recs[1]["bytes_per_token"] - recs[0]["bytes_per_token"] == 40 * kv_per_pos, (recs, kv_per_pos)
' "$json_out" "$out" || { echo "FAIL bench depth json: $json_out"; fail=1; }
# --steps with json and csv: the records carry the step times of the table
# (which goes to stderr), read back by Python's json and csv modules
steps_check='
import csv, io, json, re, sys
fmt, out, err = sys.argv[1:4]
table = re.findall(r"^  (.+?) +([0-9.]+) +[0-9.]+%", err, re.M)
assert len(table) == 11, table
if fmt == "json":
    recs = json.loads(out)
    got = [(k, v) for r in recs if r["n_gen"] > 0 for k, v in r["steps_us"].items()]
    assert all("steps_us" not in r for r in recs if r["n_gen"] == 0), recs
else:
    recs = list(csv.DictReader(io.StringIO(out)))
    got = [tuple(kv.split("=")) for r in recs if r["n_gen"] != "0" for kv in r["steps_us"].split(";")]
    assert all(r["steps_us"] == "" for r in recs if r["n_gen"] == "0"), recs
assert [(k, float(v)) for k, v in got] == [(k, float(v)) for k, v in table], (got, table)
'
for fmt in json csv; do
  check "bench steps $fmt" 0 "$yuan" bench -m "$random_model" -t 1 -p 8 -n 4 -r 2 -o $fmt --bw-mib 16 --steps
  python3 -c "$steps_check" "$fmt" "$out" "$err" || { echo "FAIL bench steps $fmt: $out / $err"; fail=1; }
done
check "tokenize" 0 "$yuan" tokenize -m "$random_model" --ids "the and"
case "$out" in 1\ *) ;; *) echo "FAIL tokenize: expected BOS (1) first, got '$out'"; fail=1;; esac

# chat: a scripted session with every command; the conversation survives
# /reset + /load, and bad input at the prompt never ends the program.
conv=/tmp/cli_test_conv.$$
check "chat" 0 sh -c "printf 'the and\n/save $conv\n/reset\n/bogus\n/load $conv\na the\n/exit\n' |
  '$yuan' chat -m '$random_model' -n 4 --temp 0 --system 'be brief'"
case "$out" in *"(saved 3 messages to $conv)"*"(conversation cleared)"*"unknown command"*"(loaded 3 messages from $conv)"*) ;;
  *) echo "FAIL chat: unexpected transcript: $out"; fail=1;; esac
case "$err" in *"new prompt tokens (0 reused)"*"reused)"*) ;; *) echo "FAIL chat: no usage lines: $err"; fail=1;; esac
# after /load, the second turn reuses the restored context
second=$(printf '%s\n' "$err" | grep -o '([0-9]* reused)' | sed -n 2p)
[ "$second" != "(0 reused)" ] || { echo "FAIL chat: the restored context was not reused"; fail=1; }
check "chat bad load" 0 sh -c "printf '/load /no/such/file\n/exit\n' | '$yuan' chat -m '$random_model'"
case "$out" in *"(error: cannot open"*) ;; *) echo "FAIL chat bad load: $out"; fail=1;; esac
rm -f "$conv"

if [ -n "$stories" ] && [ -f "$stories" ] && [ -f "$golden" ]; then
  prompt=$(sed -n 's/^prompt: "\(.*\)"$/\1/p' "$golden")
  want=$(sed -n 's/^generated_token_ids ([0-9]*, [^)]*): //p' "$golden")
  n=$(echo "$want" | wc -w)
  check "golden ids" 0 "$yuan" run -m "$stories" -p "$prompt" -n "$n" --temp 0 --ignore-eos --ids
  if [ "$(echo "$out" | tr -s ' \n' ' ' | sed 's/ $//')" != "$want" ]; then
    echo "FAIL golden ids: got '$out' want '$want'"; fail=1
  fi
  want_ids=$(sed -n 's/^prompt_token_ids ([0-9]*): //p' "$golden")
  check "golden tokenize" 0 "$yuan" tokenize -m "$stories" --ids "$prompt"
  [ "$out" = "$want_ids" ] || { echo "FAIL golden tokenize: '$out' vs '$want_ids'"; fail=1; }
else
  echo "skipped golden CLI checks: ../shared not found"
fi
rm -f /tmp/cli_test_err.$$
[ $fail = 0 ] && echo "cli: all checks passed"
exit $fail
