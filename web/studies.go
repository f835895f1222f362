package web

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/sentinel-pacs/sentinel"
	"github.com/sentinel-pacs/sentinel/store"
)

// studiesPerPage is the studies table's page size.
const studiesPerPage = 50

type studyLine struct {
	store.StudyRow
	StudyDate string
}

type sortLink struct {
	Key, Label, URL, Aria string
}

type studiesData struct {
	Rows               []studyLine
	Total, Page, Pages int
	Decision, From, To string
	Sort               string
	Asc                bool
	Columns            []sortLink
	Prev, Next         string
	Decisions          []string
}

// studies lists the studies, filtered by worst decision and by the date
// their last film was received, sorted by any column with the study UID
// breaking ties, fifty to a page.
func (s *Server) studies(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	d := studiesData{Decision: q.Get("decision"), From: q.Get("from"), To: q.Get("to"), Sort: q.Get("sort"),
		Asc: q.Get("dir") == "asc", Decisions: store.WorstDecisions()}
	if d.Sort == "" {
		d.Sort = "received"
	}
	f := store.StudyFilter{Decision: d.Decision, Sort: d.Sort, Asc: d.Asc, Limit: studiesPerPage}
	var err error
	if f.From, err = parseDay(d.From); err != nil {
		http.Error(w, "from: "+err.Error(), http.StatusBadRequest)
		return
	}
	if f.To, err = parseDay(d.To); err != nil {
		http.Error(w, "to: "+err.Error(), http.StatusBadRequest)
		return
	}
	if !f.To.IsZero() {
		f.To = f.To.Add(24 * time.Hour) // the whole last day
	}
	if _, ok := store.StudySorts[d.Sort]; !ok {
		http.Error(w, "unknown sort", http.StatusBadRequest)
		return
	}
	if d.Decision != "" && !slices.Contains(d.Decisions, d.Decision) {
		http.Error(w, "decision must be one of "+strings.Join(d.Decisions, ", "), http.StatusBadRequest)
		return
	}
	d.Page = 1
	if v := q.Get("page"); v != "" {
		if d.Page, err = strconv.Atoi(v); err != nil || d.Page < 1 || d.Page > 1_000_000 {
			http.Error(w, "page must be a positive number", http.StatusBadRequest)
			return
		}
	}
	f.Offset = (d.Page - 1) * studiesPerPage
	rows, total, err := s.db.StudiesPage(r.Context(), f)
	if err != nil {
		s.fail(w, r, "studies", err)
		return
	}
	d.Total = total
	d.Pages = max(1, (total+studiesPerPage-1)/studiesPerPage)
	for _, row := range rows {
		d.Rows = append(d.Rows, studyLine{row, s.dates.studyDate(row.FirstPath)})
	}
	link := func(sortKey string, asc bool, page int) string {
		v := url.Values{}
		for k, val := range map[string]string{"decision": d.Decision, "from": d.From, "to": d.To} {
			if val != "" {
				v.Set(k, val)
			}
		}
		v.Set("sort", sortKey)
		if asc {
			v.Set("dir", "asc")
		}
		if page > 1 {
			v.Set("page", strconv.Itoa(page))
		}
		return "/studies?" + v.Encode()
	}
	for _, c := range []struct{ key, label string }{{"accession", "Accession number"}, {"", "Study date"}, {"modality", "Modality"},
		{"decision", "Worst decision"}, {"score", "Highest score"}, {"revision", "Revision"}, {"received", "Received"}} {
		sl := sortLink{Key: c.key, Label: c.label}
		if c.key != "" {
			asc := false
			if c.key == d.Sort {
				asc = !d.Asc
				sl.Aria = "descending"
				if d.Asc {
					sl.Aria = "ascending"
				}
			}
			sl.URL = link(c.key, asc, 1)
		}
		d.Columns = append(d.Columns, sl)
	}
	if d.Page > 1 {
		d.Prev = link(d.Sort, d.Asc, d.Page-1)
	}
	if d.Page < d.Pages {
		d.Next = link(d.Sort, d.Asc, d.Page+1)
	}
	s.render(w, r, http.StatusOK, "studies", page{Title: "Studies", Nav: "studies", Data: d})
}

func parseDay(s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	t, err := time.ParseInLocation("2006-01-02", s, time.Local)
	if err != nil {
		return time.Time{}, fmt.Errorf("want a date as YYYY-MM-DD, got %q", s)
	}
	return t, nil
}

// filmView is one film of a study page, as its latest report gives it.
type filmView struct {
	store.StudyInstance
	Report  *sentinel.Report
	Heatmap bool
	Labels  []sentinel.Label
}

// revisionView is one revision of the study's report.
type revisionView struct {
	store.StudyReportRow
	Report *sentinel.StudyReport
}

type studyData struct {
	StudyInstanceUID string
	AccessionNumber  string
	StudyDate        string
	Films            []filmView
	Revisions        []revisionView
	Findings         []string
}

// study shows a study's films, each with its heatmap, numbers and reason,
// and the revisions of the study's report with what changed.
func (s *Server) study(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	uid := r.PathValue("uid")
	insts, err := s.db.StudyInstances(ctx, uid)
	if err != nil {
		s.fail(w, r, "study", err)
		return
	}
	if len(insts) == 0 {
		http.Error(w, "no such study", http.StatusNotFound)
		return
	}
	d := studyData{StudyInstanceUID: uid, Findings: Findings}
	for _, in := range insts {
		fv := filmView{StudyInstance: in}
		var rep sentinel.Report
		if readJSON(in.ReportPath, &rep) {
			fv.Report = &rep
			fv.Heatmap = rep.Heatmap != ""
		}
		if fv.Labels, err = s.db.Labels(ctx, in.InstanceID); err != nil {
			s.fail(w, r, "study", err)
			return
		}
		d.Films = append(d.Films, fv)
	}
	if f, ok, err := s.db.InstanceFilesOf(ctx, insts[0].InstanceID); err == nil && ok {
		d.AccessionNumber = f.AccessionNumber
		d.StudyDate = s.dates.studyDate(f.Path)
	}
	revs, err := s.db.StudyReports(ctx, uid)
	if err != nil {
		s.fail(w, r, "study", err)
		return
	}
	for _, rv := range revs {
		v := revisionView{StudyReportRow: rv}
		var sr sentinel.StudyReport
		if readJSON(rv.Path, &sr) {
			v.Report = &sr
		}
		d.Revisions = append(d.Revisions, v)
	}
	s.render(w, r, http.StatusOK, "study", page{Title: "Study " + d.AccessionNumber, Nav: "studies", Data: d})
}

// readJSON reads a report file the database names; false when it is gone
// or unreadable (the page then shows the database's numbers alone).
func readJSON(path string, v any) bool {
	if path == "" {
		return false
	}
	b, err := os.ReadFile(path)
	if err != nil || len(b) > 8<<20 {
		return false
	}
	return json.Unmarshal(b, v) == nil
}
