package web

import (
	"context"
	"fmt"
	"html"
	"html/template"
	"log/slog"
	"math"
	"net/http"
	"net/url"
	"sort"
	"strings"

	"github.com/sentinel-pacs/sentinel/learn"
	"github.com/sentinel-pacs/sentinel/store"
)

type modelRow struct {
	store.ModelVersion
	HoldoutAUC, SeedFPR     float64
	HoldoutN, HoldoutA      int
	TrainNormals, Abnormals int
}

type modelsData struct {
	Models        []modelRow
	Current       string
	ROC, Curve    template.HTML
	ROCNote       string
	CanRetrain    bool
	CanRollback   bool
	Retraining    bool
	LastResult    string
	Audit         []store.AuditEntry
	HasHoldoutAUC bool
}

func metric(m map[string]float64, k string) float64 {
	v, ok := m[k]
	if !ok || v < 0 {
		return math.NaN()
	}
	return v
}

func (s *Server) models(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	vs, err := s.db.ModelVersions(ctx)
	if err != nil {
		s.fail(w, r, "models", err)
		return
	}
	d := modelsData{CanRetrain: s.opt.Retrain != nil, CanRollback: s.opt.Rollback != nil, Retraining: s.retraining.Load()}
	s.retrainMu.Lock()
	d.LastResult = s.lastResult
	s.retrainMu.Unlock()
	for i := len(vs) - 1; i >= 0; i-- { // newest first
		v := vs[i]
		m := v.Info.Metrics
		row := modelRow{ModelVersion: v, HoldoutAUC: metric(m, "holdout_auc"), SeedFPR: metric(m, "seed_fpr"),
			HoldoutN: int(m["holdout_normals"]), HoldoutA: int(m["holdout_abnormals"]),
			TrainNormals: int(m["train_normals"]), Abnormals: int(m["labelled_abnormals"])}
		if v.Active {
			d.Current = v.Info.Version
		}
		if !math.IsNaN(row.HoldoutAUC) {
			d.HasHoldoutAUC = true
		}
		d.Models = append(d.Models, row)
	}
	roc, note, err := s.rocChart(ctx, vs)
	if err != nil {
		s.fail(w, r, "models", err)
		return
	}
	d.ROC, d.ROCNote = roc, note
	d.Curve = learningCurve(vs)
	if sessionOf(r).Reader.Admin() {
		if d.Audit, err = s.db.AuditLog(ctx, 20); err != nil {
			s.fail(w, r, "models", err)
			return
		}
	}
	s.render(w, r, http.StatusOK, "models", page{Title: "Models", Nav: "models", Data: d})
}

// retrain starts a retraining in the background: it takes minutes, and
// its outcome shows on the models page. One runs at a time.
func (s *Server) retrain(w http.ResponseWriter, r *http.Request) {
	if s.opt.Retrain == nil {
		http.Error(w, "this agent cannot retrain from the page: run 'sentinel retrain'", http.StatusNotImplemented)
		return
	}
	if !s.retraining.CompareAndSwap(false, true) {
		http.Redirect(w, r, "/models?msg="+url.QueryEscape("A retraining is already running."), http.StatusSeeOther)
		return
	}
	who := sessionOf(r).Reader.Name
	if err := s.db.Audit(r.Context(), store.AuditEntry{Reader: who, Action: store.AuditRetrain, Detail: "started", Remote: remote(r)}); err != nil {
		s.retraining.Store(false)
		s.fail(w, r, "retrain", err)
		return
	}
	go func(ctx context.Context) {
		defer s.retraining.Store(false)
		res, err := s.opt.Retrain(ctx)
		if err != nil {
			res = "retraining failed: " + err.Error()
			s.log.Warn("retrain from the page", slog.Any("error", err))
		}
		s.retrainMu.Lock()
		s.lastResult = res
		s.retrainMu.Unlock()
		if err := s.db.Audit(context.WithoutCancel(ctx), store.AuditEntry{Reader: who, Action: store.AuditRetrain, Detail: res}); err != nil {
			s.log.Warn("audit retrain", slog.Any("error", err))
		}
	}(s.opt.Context)
	http.Redirect(w, r, "/models?msg="+url.QueryEscape("Retraining started: the result shows here when it is done."), http.StatusSeeOther)
}

func (s *Server) rollback(w http.ResponseWriter, r *http.Request) {
	if s.opt.Rollback == nil {
		http.Error(w, "this agent cannot roll back from the page: run 'sentinel models rollback VERSION'", http.StatusNotImplemented)
		return
	}
	v := r.PostFormValue("version")
	if v == "" || len(v) > 200 {
		http.Error(w, "give the version to roll back to", http.StatusBadRequest)
		return
	}
	res, err := s.opt.Rollback(r.Context(), v)
	detail := res
	if err != nil {
		detail = "failed: " + err.Error()
	}
	if aerr := s.db.Audit(r.Context(), store.AuditEntry{Reader: sessionOf(r).Reader.Name, Action: store.AuditRollback,
		Subject: v, Detail: detail, Remote: remote(r)}); aerr != nil {
		s.log.Warn("audit rollback", slog.Any("error", aerr))
	}
	if err != nil {
		http.Error(w, "rollback failed: "+err.Error(), http.StatusConflict)
		return
	}
	http.Redirect(w, r, "/models?msg="+url.QueryEscape(res), http.StatusSeeOther)
}

// chart geometry: a square plot in a viewBox with room for the axes.
const (
	chartW, chartH = 360, 300
	plotX, plotY   = 50, 16
	plotW, plotH   = 290, 240
)

var curveColours = []string{"#0b5cad", "#b3261e", "#1b7f3b", "#8a4baf", "#a15c00"}

// rocChart draws the ROC curves on the frozen holdout of the newest model
// versions with scores of both classes there, from the scores the database
// keeps of each version.
func (s *Server) rocChart(ctx context.Context, vs []store.ModelVersion) (template.HTML, string, error) {
	ids, err := s.db.Holdout(ctx)
	if err != nil {
		return "", "", err
	}
	if len(ids) == 0 {
		return "", "No frozen holdout yet: it forms from the first labelled cases.", nil
	}
	labels, err := s.db.AllLabels(ctx)
	if err != nil {
		return "", "", err
	}
	truth := learn.ResolveAll(labels)
	scores, err := s.db.HoldoutScores(ctx)
	if err != nil {
		return "", "", err
	}
	byModel := map[string][]store.ModelScore{}
	for _, sc := range scores {
		if truth[sc.InstanceID] != "" {
			byModel[sc.ModelVersion] = append(byModel[sc.ModelVersion], sc)
		}
	}
	var b strings.Builder
	axes(&b, "false-positive rate", "true-positive rate", "0", "1", "0", "1")
	fmt.Fprintf(&b, `<line x1="%d" y1="%d" x2="%d" y2="%d" class="diag"/>`, plotX, plotY+plotH, plotX+plotW, plotY)
	drawn := 0
	var legend []string
	for i := len(vs) - 1; i >= 0 && drawn < len(curveColours); i-- {
		v := vs[i].Info.Version
		sc := byModel[v]
		vals := make([]float64, len(sc))
		pos := make([]bool, len(sc))
		np := 0
		for j, x := range sc {
			vals[j], pos[j] = x.Value, truth[x.InstanceID] == learn.Abnormal
			if pos[j] {
				np++
			}
		}
		if np == 0 || np == len(sc) {
			continue
		}
		col := curveColours[drawn]
		fmt.Fprintf(&b, `<polyline fill="none" stroke="%s" stroke-width="2" points="%s"/>`, col, rocPoints(vals, pos))
		legend = append(legend, fmt.Sprintf(`<tspan fill="%s">■</tspan> %s AUC %.3f (%d+%d)`, col, html.EscapeString(short(v)),
			learn.AUROC(vals, pos), np, len(sc)-np))
		drawn++
	}
	if drawn == 0 {
		return "", fmt.Sprintf("The frozen holdout has %d cases, but no model version has stored scores of both classes there yet.", len(ids)), nil
	}
	for i, l := range legend {
		fmt.Fprintf(&b, `<text x="%d" y="%d" class="legend">%s</text>`, plotX+plotW-4, plotY+plotH-12-14*(len(legend)-1-i), l)
	}
	return svg(b.String(), "ROC curves on the frozen holdout"), fmt.Sprintf("%d holdout cases; the scores each version stored for them.", len(ids)), nil
}

// rocPoints returns the ROC curve of scores against labels as SVG points,
// thresholds swept from high to low, ties taken together.
func rocPoints(vals []float64, pos []bool) string {
	idx := make([]int, len(vals))
	for i := range idx {
		idx[i] = i
	}
	sort.SliceStable(idx, func(a, b int) bool { return vals[idx[a]] > vals[idx[b]] })
	np, nn := 0, 0
	for _, p := range pos {
		if p {
			np++
		} else {
			nn++
		}
	}
	var b strings.Builder
	tp, fp := 0, 0
	pt := func() {
		fmt.Fprintf(&b, "%.1f,%.1f ", float64(plotX)+float64(fp)/float64(nn)*plotW, float64(plotY+plotH)-float64(tp)/float64(np)*plotH)
	}
	pt()
	for i := 0; i < len(idx); {
		j := i
		for j < len(idx) && vals[idx[j]] == vals[idx[i]] {
			if pos[idx[j]] {
				tp++
			} else {
				fp++
			}
			j++
		}
		pt()
		i = j
	}
	return strings.TrimSpace(b.String())
}

// learningCurve draws each version's holdout ROC-AUC and seed-normal
// false-positive rate, in the order the versions were made.
func learningCurve(vs []store.ModelVersion) template.HTML {
	var auc, fpr []string
	n := len(vs)
	if n == 0 {
		return ""
	}
	x := func(i int) float64 {
		if n == 1 {
			return plotX + plotW/2
		}
		return plotX + float64(i)/float64(n-1)*plotW
	}
	y := func(v float64) float64 { return plotY + plotH - v*plotH }
	var b strings.Builder
	axes(&b, "model version, oldest to newest", "holdout AUC / seed FPR", "1", fmt.Sprint(n), "0", "1")
	for i, v := range vs {
		if a := metric(v.Info.Metrics, "holdout_auc"); !math.IsNaN(a) {
			auc = append(auc, fmt.Sprintf("%.1f,%.1f", x(i), y(a)))
			fmt.Fprintf(&b, `<circle cx="%.1f" cy="%.1f" r="3" fill="#0b5cad"><title>%s: AUC %.3f</title></circle>`, x(i), y(a), html.EscapeString(v.Info.Version), a)
		}
		if f := metric(v.Info.Metrics, "seed_fpr"); !math.IsNaN(f) {
			fpr = append(fpr, fmt.Sprintf("%.1f,%.1f", x(i), y(f)))
			fmt.Fprintf(&b, `<rect x="%.1f" y="%.1f" width="6" height="6" fill="#b3261e"><title>%s: seed FPR %.3f</title></rect>`, x(i)-3, y(f)-3, html.EscapeString(v.Info.Version), f)
		}
	}
	if len(auc) == 0 && len(fpr) == 0 {
		return ""
	}
	fmt.Fprintf(&b, `<polyline fill="none" stroke="#0b5cad" stroke-width="2" points="%s"/>`, strings.Join(auc, " "))
	fmt.Fprintf(&b, `<polyline fill="none" stroke="#b3261e" stroke-width="2" stroke-dasharray="5 3" points="%s"/>`, strings.Join(fpr, " "))
	fmt.Fprintf(&b, `<text x="%d" y="%d" class="legend"><tspan fill="#0b5cad">●</tspan> holdout AUC <tspan fill="#b3261e">■</tspan> seed FPR</text>`, plotX+plotW-4, plotY+14)
	return svg(b.String(), "Learning curve over model versions")
}

func axes(b *strings.Builder, xl, yl, x0, x1, y0, y1 string) {
	fmt.Fprintf(b, `<rect x="%d" y="%d" width="%d" height="%d" class="plot"/>`, plotX, plotY, plotW, plotH)
	fmt.Fprintf(b, `<text x="%d" y="%d" class="tick">%s</text><text x="%d" y="%d" class="tick end">%s</text>`, plotX, plotY+plotH+14, x0, plotX+plotW, plotY+plotH+14, x1)
	fmt.Fprintf(b, `<text x="%d" y="%d" class="tick end">%s</text><text x="%d" y="%d" class="tick end">%s</text>`, plotX-4, plotY+plotH, y0, plotX-4, plotY+8, y1)
	fmt.Fprintf(b, `<text x="%d" y="%d" class="label mid">%s</text>`, plotX+plotW/2, chartH-8, html.EscapeString(xl))
	fmt.Fprintf(b, `<text transform="translate(14 %d) rotate(-90)" class="label mid">%s</text>`, plotY+plotH/2, html.EscapeString(yl))
}

func svg(body, title string) template.HTML {
	return template.HTML(fmt.Sprintf(`<svg viewBox="0 0 %d %d" width="%d" height="%d" role="img" aria-label="%s" class="chart">%s</svg>`,
		chartW, chartH, chartW, chartH, html.EscapeString(title), body))
}

// short trims a long version name for a legend.
func short(v string) string {
	if len(v) > 28 {
		return v[:28] + "…"
	}
	return v
}
