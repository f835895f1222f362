package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"
)

// Mine says whether work recorded under the named agent is this agent's
// to redo (revise a report, fix a report file): on SQLite every row is, as
// one file has one agent; on PostgreSQL, rows this agent wrote and rows
// from before agents were recorded.
func (db *DB) Mine(agent string) bool {
	return !db.pg || agent == "" || agent == db.Agent
}

// shared is 1 on PostgreSQL, where several agents may share the database,
// for queries that then keep to this agent's rows.
func (db *DB) shared() int {
	if db.pg {
		return 1
	}
	return 0
}

// AgentInfo is one agent sharing the database.
type AgentInfo struct {
	Name        string
	Host        string
	Workspace   string
	Version     string
	StartedAt   time.Time
	HeartbeatAt time.Time
	// StoppedAt is set when the agent stopped cleanly.
	StoppedAt time.Time
}

// ErrAgentNameInUse means another agent, on another host or workspace, runs
// under the same name: the two would take each other's claims for their
// own.
var ErrAgentNameInUse = errors.New("another agent runs under this name")

// AgentStarted records this agent (db.Agent) as running, from its
// workspace, with the given software version. It fails with
// ErrAgentNameInUse if an agent of that name on another host or workspace
// has sent a heartbeat within two claim leases and has not stopped.
func (db *DB) AgentStarted(ctx context.Context, workspace, version string) error {
	host, _ := os.Hostname()
	if abs, err := filepath.Abs(workspace); err == nil {
		workspace = abs
	}
	return db.tx(ctx, func(tx *Tx) error {
		var h, ws, beat, stopped string
		err := tx.QueryRowContext(ctx, `SELECT host, workspace, heartbeat_at, stopped_at FROM agents WHERE name = ?`, db.Agent).
			Scan(&h, &ws, &beat, &stopped)
		switch {
		case errors.Is(err, sql.ErrNoRows):
		case err != nil:
			return fmt.Errorf("store: agent started: %w", err)
		case db.pg && (h != host || ws != workspace) && stopped == "" && db.Now().Sub(parseTime(beat)) < 2*db.ClaimLease:
			// (One SQLite file has one agent: the workspace lock sees to
			// it.)
			return fmt.Errorf("%w: %q runs on %s in %s (last heartbeat %s); give this agent another name (store.agent)",
				ErrAgentNameInUse, db.Agent, h, ws, beat)
		}
		return db.agentStarted(ctx, tx, host, workspace, version)
	})
}

func (db *DB) agentStarted(ctx context.Context, tx *Tx, host, workspace, version string) error {
	now := db.now()
	_, err := tx.ExecContext(ctx, `INSERT INTO agents (name, host, workspace, version, started_at, heartbeat_at, stopped_at)
		VALUES (?, ?, ?, ?, ?, ?, '') ON CONFLICT (name) DO UPDATE SET host = excluded.host, workspace = excluded.workspace,
		version = excluded.version, started_at = excluded.started_at, heartbeat_at = excluded.heartbeat_at, stopped_at = ''`,
		db.Agent, host, workspace, version, now, now)
	if err != nil {
		return fmt.Errorf("store: agent started: %w", err)
	}
	return nil
}

// Heartbeat says this agent is alive, and extends the leases of its
// claims on the files it is processing (see RenewClaims).
func (db *DB) Heartbeat(ctx context.Context) error {
	if _, err := db.db.ExecContext(ctx, `UPDATE agents SET heartbeat_at = ? WHERE name = ?`, db.now(), db.Agent); err != nil {
		return fmt.Errorf("store: heartbeat: %w", err)
	}
	_, err := db.RenewClaims(ctx)
	return err
}

// AgentStopped records that this agent stopped cleanly.
func (db *DB) AgentStopped(ctx context.Context) error {
	now := db.now()
	if _, err := db.db.ExecContext(ctx, `UPDATE agents SET heartbeat_at = ?, stopped_at = ? WHERE name = ?`, now, now, db.Agent); err != nil {
		return fmt.Errorf("store: agent stopped: %w", err)
	}
	return nil
}

// Agents lists the agents that have run on the database, the most
// recently heard from first.
func (db *DB) Agents(ctx context.Context) ([]AgentInfo, error) {
	rows, err := db.db.QueryContext(ctx, `SELECT name, host, workspace, version, started_at, heartbeat_at, stopped_at
		FROM agents ORDER BY heartbeat_at DESC, name`)
	if err != nil {
		return nil, fmt.Errorf("store: agents: %w", err)
	}
	defer rows.Close()
	var out []AgentInfo
	for rows.Next() {
		var a AgentInfo
		var started, beat, stopped string
		if err := rows.Scan(&a.Name, &a.Host, &a.Workspace, &a.Version, &started, &beat, &stopped); err != nil {
			return nil, fmt.Errorf("store: agents: %w", err)
		}
		a.StartedAt, a.HeartbeatAt, a.StoppedAt = parseTime(started), parseTime(beat), parseTime(stopped)
		out = append(out, a)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: agents: %w", err)
	}
	return out, nil
}

// ClaimsByAgent counts the files being processed under each agent's claim.
func (db *DB) ClaimsByAgent(ctx context.Context) (map[string]int, error) {
	m := map[string]int{}
	if err := groupCount(ctx, db.db, `SELECT claimed_by, COUNT(*) FROM queue WHERE state = 'processing' GROUP BY claimed_by`, m); err != nil {
		return nil, fmt.Errorf("store: claims: %w", err)
	}
	return m, nil
}

// FilesByAgent counts the files each agent settled (recorded an outcome
// for).
func (db *DB) FilesByAgent(ctx context.Context) (map[string]int, error) {
	m := map[string]int{}
	if err := groupCount(ctx, db.db, `SELECT agent, COUNT(*) FROM files GROUP BY agent`, m); err != nil {
		return nil, fmt.Errorf("store: files by agent: %w", err)
	}
	return m, nil
}

// QueueClaims lists the files the named agent holds claims on.
func (db *DB) QueueClaims(ctx context.Context, agent string) ([]string, error) {
	rows, err := db.db.QueryContext(ctx, `SELECT path FROM queue WHERE state = 'processing' AND claimed_by = ? ORDER BY path`, agent)
	if err != nil {
		return nil, fmt.Errorf("store: claims of %s: %w", agent, err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var p string
		if err := rows.Scan(&p); err != nil {
			return nil, fmt.Errorf("store: claims of %s: %w", agent, err)
		}
		out = append(out, p)
	}
	return out, rows.Err()
}

// FileAgents says which agent settled each of the named files (the latest
// record of each path).
func (db *DB) FileAgents(ctx context.Context, paths []string) (map[string]string, error) {
	out := map[string]string{}
	for _, p := range paths {
		var agent string
		err := db.db.QueryRowContext(ctx, `SELECT agent FROM files WHERE path = ? ORDER BY id DESC LIMIT 1`, p).Scan(&agent)
		if err != nil && !errors.Is(err, sql.ErrNoRows) {
			return nil, fmt.Errorf("store: agent of %s: %w", p, err)
		}
		out[p] = agent
	}
	return out, nil
}
