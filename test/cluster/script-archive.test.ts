import { execFileSync } from 'node:child_process';
import { gunzipSync } from 'node:zlib';
import { installerScript, packForUserData, stripComments } from '../../lib/cluster/script-archive';

describe('stripComments', () => {
  test('drops full-line comments, keeps the #! line, code and trailing comments', () => {
    const script = ['#!/bin/bash', '# why', 'set -euo pipefail', '  # indented why', 'echo "#not a comment" # trailing', ''].join('\n');
    expect(stripComments(script)).toBe(['#!/bin/bash', 'set -euo pipefail', 'echo "#not a comment" # trailing', ''].join('\n'));
  });

  test('keeps every line of a here-document, <<- with tabs and several on one line included', () => {
    const script = [
      '# drop',
      "cat > /etc/unit <<'EOF'",
      '# kept: data',
      'EOF',
      'cat <<-END',
      '\t# kept too',
      '\tEND',
      'cat <<A; cat <<"B"',
      '# a',
      'A',
      '# b',
      'B',
      '# dropped again',
      'x=$((1 << 2)); cat <<< "# here-string"',
      '# dropped after a shift and a here-string',
    ].join('\n');
    const kept = stripComments(script).split('\n');
    expect(kept).toEqual(expect.arrayContaining(['# kept: data', '\t# kept too', '# a', '# b']));
    expect(kept).not.toContain('# drop');
    expect(kept).not.toContain('# dropped again');
    expect(kept).not.toContain('# dropped after a shift and a here-string');
  });
});

describe('installer', () => {
  test('packed, unpacked and run by bash, it writes each file exactly', () => {
    const dir = execFileSync('mktemp', ['-d'], { encoding: 'utf8' }).trim();
    try {
      const files = [
        { path: `${dir}/a.sh`, text: "#!/bin/bash\necho 'a $HOME `x`'\n" },
        { path: `${dir}/b.sh`, text: 'no final newline' },
      ];
      const packed = packForUserData(installerScript(files));
      expect(packed).toMatch(/^[A-Za-z0-9+/]+=*$/); // one base64 line: no byte of the 16 KB on line breaks
      execFileSync('bash', ['-c', `set -o pipefail; base64 -d <<'X' | gzip -dc | bash\n${packed}\nX`]);
      expect(execFileSync('cat', [`${dir}/a.sh`], { encoding: 'utf8' })).toBe(files[0].text);
      expect(execFileSync('cat', [`${dir}/b.sh`], { encoding: 'utf8' })).toBe('no final newline\n');
      expect(gunzipSync(Buffer.from(packed, 'base64')).toString('utf8')).toBe(installerScript(files));
    } finally {
      execFileSync('rm', ['-rf', dir]);
    }
  });

  test('a failing write fails the installer (set -e), so the user-data fails and signals', () => {
    const packed = packForUserData(installerScript([{ path: '/nonexistent-dir/x.sh', text: 'x\n' }]));
    expect(() => execFileSync('bash', ['-c', `set -o pipefail; base64 -d <<'X' | gzip -dc | bash\n${packed}\nX`], { stdio: 'pipe' })).toThrow();
  });
});
