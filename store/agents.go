package store

import (
	"context"
	"fmt"
	"os"
	"time"
)

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

// AgentStarted records this agent (db.Agent) as running, from its
// workspace, with the given software version.
func (db *DB) AgentStarted(ctx context.Context, workspace, version string) error {
	host, _ := os.Hostname()
	now := db.now()
	_, err := db.db.ExecContext(ctx, `INSERT INTO agents (name, host, workspace, version, started_at, heartbeat_at, stopped_at)
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
