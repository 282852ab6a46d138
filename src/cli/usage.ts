// The help text, kept next to nothing else so it stays easy to read and to keep true.

export const USAGE = `herd: session-affine process pools

Usage:
  herd serve [--config FILE] [--log-level LEVEL] [--json]
                               run the daemon (default config: ./herd.yaml;
                               --json: JSON log lines whatever log.format says)
  herd config check FILE [--json]
                               validate a config and summarise it (--json: valid
                               and its warnings, or every problem with its place)
  herd status [--pool P]       pools, workers, sessions, queue; node memory and load
  herd sessions [--pool P]     live sessions with their worker, age and activity
  herd watch [--pool P] [--session ID] [--snapshot] [--since REV] [--count N]
                               follow session and worker events
  herd logs SESSION [--follow]  what the session's worker wrote to stdout and stderr
                               since the session began; --follow (-f): and each
                               later write, until the session ends (--json: one
                               {"data": base64} object per piece)
  herd cluster status [--pool P]
                               a cluster's nodes: lease, pools, capacity, sessions
  herd drain [--no-wait]       the daemon takes no new sessions, serves its live ones
                               until they end (or drain_timeout), then stops; waits
                               for that unless --no-wait
  herd restart                 hand the daemon over, in place, to a new process
                               running the code and config now on disk, live
                               sessions and their workers included (as SIGUSR2)
  herd --help | --version [--json]

Options for status, sessions, watch, logs, cluster status, drain and restart:
  --addr ADDR     the daemon's control plane: host:port, http://host:port or
                  unix:/path (default $HERD_ADDR, else 127.0.0.1:7070)
  --token TOKEN   bearer token (default $HERD_TOKEN)
  --json          machine-readable output (watch: one JSON object per line)

Exit status: 0 ok, 1 failure, 2 bad usage or bad config.`;
