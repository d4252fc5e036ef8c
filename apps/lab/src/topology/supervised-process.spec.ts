import { afterEach, describe, expect, it } from '@jest/globals';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SupervisedProcess, type SupervisedProcessOptions } from './supervised-process.js';

/** A tiny Node script as the supervised command: `node -e <script>`. */
function node(name: string, script: string, options: Partial<SupervisedProcessOptions> = {}): SupervisedProcess {
  const supervised = new SupervisedProcess({ name, command: process.execPath, args: ['-e', script], ...options });
  started.push(supervised);
  return supervised;
}

const started: SupervisedProcess[] = [];
const alive = (pid: number | undefined): boolean => {
  try {
    process.kill(pid!, 0);
    return true;
  } catch {
    return false;
  }
};

afterEach(async () => {
  await Promise.all(started.splice(0).map((supervised) => supervised.kill()));
});

describe('SupervisedProcess', () => {
  it('starts, is ready once its probe answers, and keeps what it writes', async () => {
    let probes = 0;
    const server = node('ticker', "console.log('hello'); console.error('on stderr'); setInterval(() => {}, 1000)", {
      ready: async () => (++probes >= 3 ? true : `probe ${probes}`),
      pollMs: 10,
    });
    await server.start(5_000);
    expect(probes).toBe(3);
    expect(server.running).toBe(true);
    expect(alive(server.pid)).toBe(true);
    expect(server.exitCode).toBeUndefined();
    // Output arrives on its own; give the pipes a moment.
    for (let i = 0; i < 50 && !server.output.includes('on stderr'); i++) await new Promise((resolve) => setTimeout(resolve, 20));
    expect(server.output).toContain('hello');
    expect(server.output).toContain('on stderr');
    await expect(server.start()).rejects.toThrow(/ticker is already running \(pid \d+\)/);
  });

  it('passes its env on top of this process, behind a prefix', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'supervised-'));
    try {
      const out = join(dir, 'out');
      // `env` as a prefix that execs the command, like `ip netns exec <ns>`.
      const script = `require('fs').writeFileSync(${JSON.stringify(out)}, process.env.GREETING + ' ' + (process.env.PATH ? 'path' : 'no path'))`;
      const once = node('once', script, { prefix: ['env', 'EXTRA=1'], env: { GREETING: 'hi' } });
      await once.start();
      expect(await once.exited()).toEqual({ code: 0, signal: null });
      expect(await readFile(out, 'utf8')).toBe('hi path');
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('rejects at once when it exits before it is ready, naming it and quoting the tail of its output', async () => {
    const lines = Array.from({ length: 80 }, (_, i) => `line ${i}`).join('\\n');
    const broken = node('broken-server', `console.error("${lines}"); console.error('bad config'); process.exit(3)`, {
      ready: async () => 'no answer',
      diagnostics: () => '--- its log ---\nlast log line',
    });
    const started = Date.now();
    const error = await broken.start(20_000).then(
      () => undefined,
      (failure: unknown) => failure as Error,
    );
    expect(Date.now() - started).toBeLessThan(5_000);
    expect(error?.message).toMatch(/^broken-server exited with 3 before it was ready\./);
    expect(error?.message).toContain('--- its log ---\nlast log line');
    expect(error?.message).toContain('bad config');
    expect(error?.message).not.toContain('line 20\n'); // only the tail
    expect(broken.running).toBe(false);
    expect(broken.exitCode).toBe(3);
    expect(broken.signalCode).toBeNull();
  });

  it('rejects after the timeout with the probe’s last reason, leaving the process to the caller', async () => {
    const slow = node('slow', "console.log('booting'); setInterval(() => {}, 1000)", { ready: async () => 'still booting', pollMs: 20 });
    await expect(slow.start(300)).rejects.toThrow(/^slow not ready after 300 ms \(last: still booting\)\.\n--- output ---\nbooting/);
    expect(slow.running).toBe(true);
    await slow.stop();
    expect(slow.running).toBe(false);
  });

  it('names a command that cannot be spawned', async () => {
    const missing = new SupervisedProcess({ name: 'missing', command: 'no-such-command-for-the-lab' });
    await expect(missing.start()).rejects.toThrow(/^missing failed to spawn: spawn no-such-command-for-the-lab ENOENT/);
    expect(missing.running).toBe(false);
    expect(missing.pid).toBeUndefined();
    expect(missing.exitCode).toBeNull();
  });

  it('stop sends SIGTERM and returns the exit code of a process that handles it', async () => {
    const polite = node('polite', "process.on('SIGTERM', () => process.exit(7)); console.log('up'); setInterval(() => {}, 1000)", {
      ready: async () => polite.output.includes('up') || 'not up',
    });
    await polite.start();
    expect(await polite.stop('SIGTERM', 5_000)).toBe(7);
    expect(polite.exitCode).toBe(7);
    expect(await polite.stop()).toBe(7); // no-op once it ended
  });

  it('stop sends SIGKILL when the process ignores SIGTERM past the timeout', async () => {
    const stubborn = node('stubborn', "process.on('SIGTERM', () => {}); console.log('up'); setInterval(() => {}, 1000)", {
      ready: async () => stubborn.output.includes('up') || 'not up',
    });
    await stubborn.start();
    const pid = stubborn.pid;
    const started = Date.now();
    expect(await stubborn.stop('SIGTERM', 300)).toBeNull();
    expect(Date.now() - started).toBeGreaterThanOrEqual(300);
    expect(stubborn.signalCode).toBe('SIGKILL');
    expect(alive(pid)).toBe(false);
    expect(stubborn.pid).toBe(pid); // still readable after it ended
  });

  it('kill, then start again: a new PID, fresh output, prepare run before each start', async () => {
    let prepared = 0;
    const dir = await mkdtemp(join(tmpdir(), 'supervised-'));
    const counter = join(dir, 'runs');
    await writeFile(counter, '');
    try {
      const script = `const fs = require('fs'); fs.appendFileSync(${JSON.stringify(counter)}, 'x'); console.log('run ' + fs.readFileSync(${JSON.stringify(counter)}, 'utf8').length); setInterval(() => {}, 1000)`;
      const server = node('restartable', script, {
        prepare: async () => {
          prepared++;
        },
        ready: async () => server.output.includes('run') || 'not up',
      });
      await server.start();
      const first = server.pid;
      await server.kill();
      expect(server.running).toBe(false);
      expect(server.signalCode).toBe('SIGKILL');
      expect(alive(first)).toBe(false);

      await server.start();
      expect(server.pid).not.toBe(first);
      expect(server.output.trim()).toBe('run 2');
      expect(server.exitCode).toBeUndefined();

      // restart stops a running process first.
      const second = server.pid;
      await server.restart(2_000);
      expect(alive(second)).toBe(false);
      expect(server.output.trim()).toBe('run 3');
      expect(prepared).toBe(3);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
