#!/bin/bash
# curl on a fake-cloud node (sandbox.ts installs this as <node>/bin/curl): appends {node, tool: "curl", argv, modes}
# to calls.jsonl, then runs the real curl. modes: the octal mode of each file named by -K or --data-binary @FILE, so
# tests can assert that keys and tokens reach curl only through 0600 files and never through its argv.
# Bash builtins only, plus one stat when files are named.
argv='' prev='' files=() b=\\
for a in "$@"; do
  s=${a//"$b"/"$b$b"}
  s=${s//\"/"$b\""}
  s=${s//$'\n'/"${b}n"}
  s=${s//$'\r'/"${b}r"}
  s=${s//$'\t'/"${b}t"}
  argv+="${argv:+,}\"$s\""
  case $prev in
    -K | --config) files+=("$a") ;;
    --data-binary | --data | -d) [[ $a == @* && $a != @- ]] && files+=("${a#@}") ;;
  esac
  prev=$a
done
modes=''
if [ "${#files[@]}" -gt 0 ]; then
  for m in $("$FAKE_NODE_DIR/sysbin/stat" -c %a -- "${files[@]}" 2>/dev/null); do modes+="${modes:+,}\"$m\""; done
fi
printf '{"node":"%s","tool":"curl","argv":[%s],"modes":[%s]}\n' "$FAKE_NODE_NAME" "$argv" "$modes" >>"$FAKE_CLOUD_DIR/calls.jsonl"
exec "$FAKE_NODE_DIR/sysbin/curl" "$@"
