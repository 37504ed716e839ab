package localrun

import (
	"encoding/json"
	"net/http"
	"time"

	"github.com/stacksnap/stacksnap/internal/localaws"
	"github.com/stacksnap/stacksnap/internal/simcloud"
	"github.com/stacksnap/stacksnap/internal/snapshot"
)

// adminHandler serves /_local/: controls of the simulated cloud, so that a
// person can delete a stack, make one busy, or make a resource's snapshot
// slow, failing or throttled, and see every path by hand. Errors come in
// plain JSON ({"error": "..."}), not Heat's shape: this is not the API.
func (r *Runner) adminHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /_local/stacks", r.listStacks)
	mux.HandleFunc("POST /_local/stacks/{name}/delete", r.cloudControl(func(req *http.Request) error {
		return r.Cloud.DeleteStack(r.Account, req.PathValue("name"))
	}))
	mux.HandleFunc("POST /_local/stacks/{name}/status", r.cloudControl(func(req *http.Request) error {
		var body struct {
			Status string `json:"status"`
		}
		if err := decodeStrict(req, &body); err != nil {
			return snapshot.Errorf(snapshot.CodeBadRequest, "body must be {\"status\": \"UPDATE_IN_PROGRESS\"}")
		}
		return r.Cloud.SetStackStatus(r.Account, req.PathValue("name"), body.Status)
	}))
	mux.HandleFunc("POST /_local/stacks/{name}/resources/{logical_id}/behaviour", r.cloudControl(func(req *http.Request) error {
		// The whole behaviour: what is left out is reset ({} is normal).
		var body struct {
			Duration       string `json:"duration"` // "20s"
			Fail           string `json:"fail"`
			ThrottleStarts int    `json:"throttle_starts"`
		}
		if err := decodeStrict(req, &body); err != nil {
			return snapshot.Errorf(snapshot.CodeBadRequest, "body must be {\"duration\": \"20s\", \"fail\": \"reason\", \"throttle_starts\": 2}")
		}
		b := simcloud.Behaviour{Fail: body.Fail, ThrottleStarts: body.ThrottleStarts}
		if body.Duration != "" {
			d, err := time.ParseDuration(body.Duration)
			if err != nil {
				return snapshot.Errorf(snapshot.CodeBadRequest, "duration %q is not a Go duration such as 20s", body.Duration)
			}
			b.Duration = d
		}
		return r.Cloud.SetBehaviour(r.Account, req.PathValue("name"), req.PathValue("logical_id"), b)
	}))
	mux.HandleFunc("GET /_local/executions/{snapshot_id}", r.execution)
	return mux
}

func (r *Runner) listStacks(w http.ResponseWriter, req *http.Request) {
	if r.Cloud == nil {
		writeJSON(w, http.StatusNotFound, map[string]string{"error": "the local runner uses real AWS: there is no simulated cloud"})
		return
	}
	type resourceJSON struct {
		LogicalID  string `json:"logical_id"`
		PhysicalID string `json:"physical_id"`
		Type       string `json:"type"`
	}
	type stackJSON struct {
		Name         string         `json:"name"`
		ID           string         `json:"id"`
		Status       string         `json:"status"`
		SnapshotsURL string         `json:"snapshots_url"`
		Resources    []resourceJSON `json:"resources"`
	}
	out := []stackJSON{}
	for _, s := range r.Stacks {
		if cur, err := r.Cloud.Stack(req.Context(), r.Account, s.Name); err == nil && cur.ID == s.ID {
			s = cur
		} else {
			s.Status = "DELETE_COMPLETE"
		}
		entry := stackJSON{Name: s.Name, ID: s.ID, Status: s.Status, SnapshotsURL: r.SnapshotsURL(s), Resources: []resourceJSON{}}
		resources, _ := r.Cloud.Resources(req.Context(), r.Account, s)
		for _, res := range resources {
			entry.Resources = append(entry.Resources, resourceJSON{LogicalID: res.LogicalID, PhysicalID: res.PhysicalID, Type: res.Type})
		}
		out = append(out, entry)
	}
	writeJSON(w, http.StatusOK, map[string]any{"stacks": out})
}

// cloudControl runs one control of the simulated cloud.
func (r *Runner) cloudControl(control func(*http.Request) error) http.HandlerFunc {
	return func(w http.ResponseWriter, req *http.Request) {
		if r.Cloud == nil {
			writeJSON(w, http.StatusNotFound, map[string]string{"error": "the local runner uses real AWS: there is no simulated cloud"})
			return
		}
		if err := control(req); err != nil {
			status := http.StatusInternalServerError
			switch snapshot.ErrorCode(err) {
			case snapshot.CodeBadRequest:
				status = http.StatusBadRequest
			case snapshot.CodeStackNotFound, snapshot.CodeNotFound:
				status = http.StatusNotFound
			}
			writeJSON(w, status, map[string]string{"error": err.Error()})
			return
		}
		w.WriteHeader(http.StatusNoContent)
	}
}

// execution shows how a snapshot's workflow ran: its state transitions
// (what Step Functions bills) and retries.
func (r *Runner) execution(w http.ResponseWriter, req *http.Request) {
	events, err := r.StepFns.Events(req.Context(), req.PathValue("snapshot_id"))
	if err != nil {
		writeJSON(w, http.StatusNotFound, map[string]string{"error": err.Error()})
		return
	}
	transitions, retries := localaws.Transitions(events)
	writeJSON(w, http.StatusOK, map[string]any{"transitions": transitions, "retries": retries, "events": events})
}

// decodeStrict reads a control's JSON body; unknown keys are mistakes.
func decodeStrict(req *http.Request, v any) error {
	dec := json.NewDecoder(req.Body)
	dec.DisallowUnknownFields()
	return dec.Decode(v)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
