package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// CopyTo copies every row of every table of db, an opened SQLite database,
// into dst, an opened (hence migrated) PostgreSQL database that holds no
// row yet, and returns how many rows each table held. Both must have
// applied the same migrations. The rows are read from one snapshot of db
// and written in one transaction of dst, parents before the rows that
// refer to them, so that a failure leaves dst as empty as it was; the
// identity sequences are then moved past the copied keys. db is not
// changed.
func (db *DB) CopyTo(ctx context.Context, dst *DB) (map[string]int, error) {
	switch {
	case db.pg:
		return nil, fmt.Errorf("store: copy: the source must be a SQLite database, not %s", db.Where())
	case !dst.pg:
		return nil, fmt.Errorf("store: copy: the destination must be a PostgreSQL database, not %s", dst.Where())
	case db.db == nil || dst.db == nil:
		return nil, errors.New("store: copy: open both databases first")
	}
	// A read-only transaction reads one snapshot of the SQLite file
	// without keeping its writers out.
	src, err := db.db.raw.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return nil, fmt.Errorf("store: copy: %w", err)
	}
	defer src.Rollback()
	if err := sameMigrations(ctx, src, dst.db.raw); err != nil {
		return nil, err
	}
	tables, err := copyOrder(ctx, src)
	if err != nil {
		return nil, fmt.Errorf("store: copy: %w", err)
	}
	counts := make(map[string]int, len(tables))
	err = dst.tx(ctx, func(tx *Tx) error {
		if err := checkEmpty(ctx, tx); err != nil {
			return err
		}
		for _, t := range tables {
			n, err := copyTable(ctx, src, tx, t)
			if err != nil {
				return fmt.Errorf("store: copy table %s: %w", t, err)
			}
			counts[t] = n
		}
		if err := pgResetIdentities(ctx, tx); err != nil {
			return fmt.Errorf("store: copy: reset identities: %w", err)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return counts, nil
}

// sameMigrations fails unless the SQLite source and the PostgreSQL
// destination have applied the same migrations, hence have the same
// tables and columns.
func sameMigrations(ctx context.Context, src *sql.Tx, dst *sql.DB) error {
	have, err := queryStrings(ctx, src, `SELECT name FROM schema_migrations ORDER BY name`)
	if err != nil {
		return fmt.Errorf("store: copy: source migrations: %w", err)
	}
	want, err := queryStrings(ctx, dst, `SELECT name FROM schema_migrations ORDER BY name`)
	if err != nil {
		return fmt.Errorf("store: copy: destination migrations: %w", err)
	}
	if slices.Equal(have, want) {
		return nil
	}
	var onlySrc, onlyDst []string
	for _, n := range have {
		if !slices.Contains(want, n) {
			onlySrc = append(onlySrc, n)
		}
	}
	for _, n := range want {
		if !slices.Contains(have, n) {
			onlyDst = append(onlyDst, n)
		}
	}
	return fmt.Errorf("store: copy: the databases have applied different migrations (only the source: %s; only the destination: %s)",
		listOrNone(onlySrc), listOrNone(onlyDst))
}

func listOrNone(names []string) string {
	if len(names) == 0 {
		return "none"
	}
	return strings.Join(names, ", ")
}

// copyOrder lists the source's tables, each after the tables its foreign
// keys refer to, and otherwise by name.
func copyOrder(ctx context.Context, src *sql.Tx) ([]string, error) {
	tables, err := queryStrings(ctx, src, `SELECT name FROM sqlite_master
		WHERE type = 'table' AND name NOT LIKE 'sqlite\_%' ESCAPE '\' AND name != 'schema_migrations' ORDER BY name`)
	if err != nil {
		return nil, fmt.Errorf("list tables: %w", err)
	}
	parents := make(map[string][]string, len(tables))
	for _, t := range tables {
		refs, err := queryStrings(ctx, src, `SELECT DISTINCT "table" FROM pragma_foreign_key_list(?) ORDER BY 1`, t)
		if err != nil {
			return nil, fmt.Errorf("foreign keys of %s: %w", t, err)
		}
		for _, r := range refs {
			// A table's reference to itself is satisfied row by row in
			// the source's order; one to a table that no longer exists
			// holds nothing to copy first.
			if r != t && slices.Contains(tables, r) {
				parents[t] = append(parents[t], r)
			}
		}
	}
	const (
		visiting = 1
		done     = 2
	)
	state := make(map[string]int, len(tables))
	order := make([]string, 0, len(tables))
	var visit func(t string) error
	visit = func(t string) error {
		switch state[t] {
		case done:
			return nil
		case visiting:
			return fmt.Errorf("the foreign keys of table %s form a cycle", t)
		}
		state[t] = visiting
		for _, p := range parents[t] {
			if err := visit(p); err != nil {
				return err
			}
		}
		state[t] = done
		order = append(order, t)
		return nil
	}
	for _, t := range tables {
		if err := visit(t); err != nil {
			return nil, err
		}
	}
	return order, nil
}

// checkEmpty fails if any table of the destination but schema_migrations
// holds a row: a copy never merges into a database in use.
func checkEmpty(ctx context.Context, tx *Tx) error {
	tables, err := queryStrings(ctx, tx.raw, `SELECT table_name FROM information_schema.tables
		WHERE table_schema = current_schema() AND table_type = 'BASE TABLE' AND table_name != 'schema_migrations'
		ORDER BY table_name`)
	if err != nil {
		return fmt.Errorf("store: copy: list destination tables: %w", err)
	}
	for _, t := range tables {
		var used bool
		if err := tx.raw.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM `+quoteName(t)+`)`).Scan(&used); err != nil {
			return fmt.Errorf("store: copy: destination table %s: %w", t, err)
		}
		if used {
			return fmt.Errorf("store: copy: the destination is not empty: table %s holds rows; copy only into a new database", t)
		}
	}
	return nil
}

// copyTable inserts every row of the source's table t into the
// destination, with its keys, and returns how many there were.
func copyTable(ctx context.Context, src *sql.Tx, tx *Tx, t string) (int, error) {
	rows, err := src.QueryContext(ctx, `SELECT * FROM `+quoteName(t))
	if err != nil {
		return 0, fmt.Errorf("read: %w", err)
	}
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil {
		return 0, fmt.Errorf("read: %w", err)
	}
	names := make([]string, len(cols))
	marks := make([]string, len(cols))
	for i, c := range cols {
		names[i] = quoteName(c)
		marks[i] = "$" + strconv.Itoa(i+1)
	}
	stmt, err := tx.raw.PrepareContext(ctx, `INSERT INTO `+quoteName(t)+` (`+strings.Join(names, ", ")+
		`) VALUES (`+strings.Join(marks, ", ")+`)`)
	if err != nil {
		return 0, fmt.Errorf("prepare: %w", err)
	}
	defer stmt.Close()
	vals := make([]any, len(cols))
	ptrs := make([]any, len(cols))
	for i := range vals {
		ptrs[i] = &vals[i]
	}
	n := 0
	for rows.Next() {
		if err := rows.Scan(ptrs...); err != nil {
			return n, fmt.Errorf("read row %d: %w", n+1, err)
		}
		if _, err := stmt.ExecContext(ctx, vals...); err != nil {
			return n, fmt.Errorf("write row %d: %w", n+1, err)
		}
		n++
	}
	if err := rows.Err(); err != nil {
		return n, fmt.Errorf("read: %w", err)
	}
	return n, nil
}

// quoteName quotes a table or column name for either engine.
func quoteName(name string) string {
	return `"` + strings.ReplaceAll(name, `"`, `""`) + `"`
}

// queryStrings returns the first column of q's rows.
func queryStrings(ctx context.Context, q querier, query string, args ...any) ([]string, error) {
	rows, err := q.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	return out, rows.Err()
}
