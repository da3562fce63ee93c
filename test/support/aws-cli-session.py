"""
The installed AWS CLI for several commands in ONE Python process (test/support/aws-cli-session.ts starts it): the
entry point /usr/bin/aws calls (awscli.clidriver.AWSCLIEntryPoint().main) with the same package and interpreter,
so the same parser, botocore, signing and output; only Python's start-up (~1.5 CPU-s a /usr/bin/aws process) is
paid once. One request a line on stdin, {"args": [...], "env": {...}}: the command runs with exactly that
environment. One answer a line on the original stdout, {"code": N, "stdout": "...", "stderr": "..."}.
"""
import io
import json
import os
import sys

import awscli.clidriver

PACKAGE_DATA = os.path.join(os.path.dirname(os.path.abspath(awscli.__file__)), "data")


def environment(env):
    """The environment a /usr/bin/aws process would run with, given `env`."""
    os.environ.clear()
    os.environ.update(env)
    # What /usr/bin/aws and the awscli package do to it on start-up (its data path after the caller's).
    if os.environ.get("LC_CTYPE", "") == "UTF-8":
        os.environ["LC_CTYPE"] = "en_US.UTF-8"
    paths = []
    if "AWS_DATA_PATH" in os.environ:
        paths = [os.path.expanduser(os.path.expandvars(p)) for p in os.environ["AWS_DATA_PATH"].split(os.pathsep)]
    os.environ["AWS_DATA_PATH"] = os.pathsep.join(paths + [PACKAGE_DATA])


answers = sys.stdout
for line in sys.stdin:
    request = json.loads(line)
    environment(request["env"])
    # Text streams over bytes, as a process's are: the CLI writes raw bytes through .buffer where it can.
    out = io.TextIOWrapper(io.BytesIO(), encoding="utf-8")
    err = io.TextIOWrapper(io.BytesIO(), encoding="utf-8", errors="replace")
    sys.stdout, sys.stderr = out, err
    try:
        code = awscli.clidriver.AWSCLIEntryPoint().main(request["args"])
    except SystemExit as e:
        # What sys.exit(main()) in /usr/bin/aws would make of it (argparse usage errors exit this way).
        code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
    finally:
        sys.stdout, sys.stderr = answers, sys.__stderr__
    texts = []
    for stream in (out, err):
        stream.flush()
        texts.append(stream.buffer.getvalue().decode("utf-8", "replace"))
    answers.write(json.dumps({"code": code, "stdout": texts[0], "stderr": texts[1]}) + "\n")
    answers.flush()
