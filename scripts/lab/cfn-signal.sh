#!/bin/bash
# The lab's stand-in for /opt/aws/bin/cfn-signal (aws-cfn-bootstrap), installed on every lab host.
# Takes the real tool's options; reports {stack, resource, region, exit code, success, reason, id} to the lab
# gateway (which knows the host by its source IP) instead of CloudFormation. Like the real one: silent and exit 0
# when the signal is delivered, a message on stderr and exit 1 when it is not, exit 2 on a usage error.
# EC2_SWARM_LAB_SIGNAL_URL overrides the target (tests); the default is the gateway's IMDS address.
set -euo pipefail

url="${EC2_SWARM_LAB_SIGNAL_URL:-http://169.254.169.254/lab/signal}"
stack='' resource='' region='' exit_code='' success='' reason='' data='' id='' handle=''

usage() {
  echo "cfn-signal: error: $1" >&2
  echo "usage: cfn-signal [-s true|false] [-r REASON] [-d DATA] [-i ID] [-e EXITCODE] [--stack STACK --resource RESOURCE] [--region REGION] [WaitConditionHandle URL]" >&2
  exit 2
}

while [ $# -gt 0 ]; do
  opt="$1"
  val=''
  has_inline=0
  case "$opt" in
    --*=*) val="${opt#*=}"; opt="${opt%%=*}"; has_inline=1 ;;
  esac
  case "$opt" in
    -s|--success|-r|--reason|-d|--data|-i|--id|-e|--exit-code|--stack|--resource|--region|--url|--role \
      |-f|--credential-file|--access-key|--secret-key|--http-proxy|--https-proxy)
      if [ "$has_inline" -eq 0 ]; then
        [ $# -ge 2 ] || usage "$opt requires a value"
        val="$2"
        shift
      fi
      ;;
    -h|--help) usage 'help requested' ;;
    -*) usage "no such option: $opt" ;;
    *) [ -z "$handle" ] || usage "unexpected argument: $opt"; handle="$opt" ;;
  esac
  case "$opt" in
    -s|--success) success="$val" ;;
    -r|--reason) reason="$val" ;;
    -d|--data) data="$val" ;;
    -i|--id) id="$val" ;;
    -e|--exit-code) exit_code="$val" ;;
    --stack) stack="$val" ;;
    --resource) resource="$val" ;;
    --region) region="$val" ;;
    *) ;; # credentials, proxies, endpoint URL: accepted and ignored, the lab needs none of them
  esac
  shift
done

if [ -n "$handle" ] && [ -z "$stack" ]; then
  usage 'wait condition handles are not supported by the lab; use --stack and --resource'
fi
[ -n "$stack" ] || usage '--stack is required'
[ -n "$resource" ] || usage '--resource is required'
if [ -n "$exit_code" ] && ! [[ "$exit_code" =~ ^-?[0-9]{1,10}$ ]]; then usage "-e must be an integer (got $exit_code)"; fi
case "$success" in ''|true|false) ;; *) usage "-s must be true or false (got $success)" ;; esac

# Form fields (curl encodes them): no value is ever interpreted by a shell or spliced into JSON.
# Bounded: the real tool gives up too, and the user-data's trap must not hang the boot.
if ! out=$(curl --silent --show-error --fail --noproxy '*' --connect-timeout 3 --max-time 10 \
  --retry 3 --retry-delay 1 --retry-connrefused \
  --data-urlencode "stack=$stack" --data-urlencode "resource=$resource" --data-urlencode "region=$region" \
  --data-urlencode "exitCode=$exit_code" --data-urlencode "success=$success" --data-urlencode "reason=$reason" \
  --data-urlencode "data=$data" --data-urlencode "id=$id" \
  "$url" 2>&1); then
  echo "cfn-signal: could not deliver the signal to the lab ($url): $out" >&2
  exit 1
fi
