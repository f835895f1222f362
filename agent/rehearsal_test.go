package agent

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sentinel-pacs/sentinel/learn"
)

// Rehearse runs the agent's own loop: each round asks its budget of new
// films, stores the answerer's labels under its reader, admits and
// retrains; a film the answerer cannot answer stays unlabelled and is
// counted.
func TestRehearseAsksAnswersAndRetrains(t *testing.T) {
	ctx := context.Background()
	f := newLearnFixture(t, 12, 8)
	if _, err := Retrain(ctx, f.db, f.opt); err != nil {
		t.Fatal(err)
	}
	answer := func(path string) (string, bool) {
		id := strings.TrimSuffix(filepath.Base(path), ".png")
		switch {
		case id == "n03":
			return "", false
		case strings.HasPrefix(id, "a"):
			return learn.Abnormal, true
		}
		return learn.Normal, true
	}
	var rows []RehearsalRound
	err := Rehearse(ctx, f.db, f.opt, RehearsalOptions{Rounds: 3, PerRound: 4, Strategy: learn.Random, Seed: 5, Admit: true,
		Answer: answer, Reader: "file"}, func(r RehearsalRound) error {
		rows = append(rows, r)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 4 || rows[0].Labels != 0 || rows[0].Retrain != nil || rows[0].Admission != nil {
		t.Fatalf("rows %+v", rows)
	}
	unanswered := 0
	for i, r := range rows[1:] {
		unanswered += r.Unanswered
		if r.Round != i+1 || r.Asked != 4 || r.Retrain == nil || r.Admission == nil || r.Model.Version == "" {
			t.Errorf("round %d: %+v", i+1, r)
		}
		if r.Labels != rows[i].Labels+r.Asked-r.Unanswered {
			t.Errorf("round %d: %d labels after %d, %d asked and %d unanswered", i+1, r.Labels, rows[i].Labels, r.Asked, r.Unanswered)
		}
	}
	// Every label is the answerer's, under its reader.
	labels, err := f.db.AllLabels(ctx)
	if err != nil {
		t.Fatal(err)
	}
	abnormal := 0
	for id, ls := range labels {
		want := learn.Normal
		if strings.HasPrefix(id, "a") {
			want, abnormal = learn.Abnormal, abnormal+1
		}
		if len(ls) != 1 || ls[0].Value != want || ls[0].Reader != "file" || id == "n03" {
			t.Errorf("%s: labels %+v", id, ls)
		}
	}
	if last := rows[len(rows)-1]; last.Labels != len(labels) || last.Abnormals != abnormal {
		t.Errorf("last round: %d labels, %d abnormal; the store holds %d, %d", last.Labels, last.Abnormals, len(labels), abnormal)
	}
	// 12 films asked, each once; n03, if asked, is the only one unanswered.
	qs, _ := f.db.Queries(ctx, "")
	if len(qs) != 12 || unanswered > 1 {
		t.Errorf("%d queries, %d unanswered", len(qs), unanswered)
	}
}

// Without a strategy nothing is asked: each round admits and retrains,
// and the admitted films are reported by path. An error from emit stops
// the rehearsal, and so does a cancelled context.
func TestRehearseAdmissionOnlyAndStops(t *testing.T) {
	ctx := context.Background()
	f := newLearnFixture(t, 12, 4)
	if _, err := Retrain(ctx, f.db, f.opt); err != nil {
		t.Fatal(err)
	}
	var rows []RehearsalRound
	err := Rehearse(ctx, f.db, f.opt, RehearsalOptions{Rounds: 3}, func(r RehearsalRound) error {
		rows = append(rows, r)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	last := rows[len(rows)-1]
	if len(rows) != 4 || last.Labels != 0 || last.Admission == nil || len(last.Admitted) == 0 {
		t.Fatalf("rows %+v", rows)
	}
	for _, p := range last.Admitted {
		if !strings.HasPrefix(filepath.Base(p), "n") {
			t.Errorf("admitted %s, an abnormal", p)
		}
	}
	stop := errors.New("enough")
	n := 0
	err = Rehearse(ctx, f.db, f.opt, RehearsalOptions{Rounds: 3}, func(RehearsalRound) error { n++; return stop })
	if !errors.Is(err, stop) || n != 1 {
		t.Errorf("emit's error: %v after %d rounds", err, n)
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if err := Rehearse(cctx, f.db, f.opt, RehearsalOptions{Rounds: 3}, func(RehearsalRound) error { return nil }); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled: %v", err)
	}
	if err := Rehearse(ctx, f.db, f.opt, RehearsalOptions{Rounds: 1, Strategy: learn.Random}, nil); err == nil {
		t.Error("queries without an answerer: no error")
	}
}
