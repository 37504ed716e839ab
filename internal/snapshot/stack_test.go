package snapshot

import "testing"

// Every in-progress StackStatus CloudFormation has, and the Heat action word
// of its 409.
func TestBusyAction(t *testing.T) {
	tests := map[string]string{
		"CREATE_IN_PROGRESS":                           "CREATE",
		"ROLLBACK_IN_PROGRESS":                         "ROLLBACK",
		"DELETE_IN_PROGRESS":                           "DELETE",
		"UPDATE_IN_PROGRESS":                           "UPDATE",
		"UPDATE_COMPLETE_CLEANUP_IN_PROGRESS":          "UPDATE",
		"UPDATE_ROLLBACK_IN_PROGRESS":                  "UPDATE_ROLLBACK",
		"UPDATE_ROLLBACK_COMPLETE_CLEANUP_IN_PROGRESS": "UPDATE_ROLLBACK",
		"REVIEW_IN_PROGRESS":                           "REVIEW",
		"IMPORT_IN_PROGRESS":                           "IMPORT",
		"IMPORT_ROLLBACK_IN_PROGRESS":                  "IMPORT_ROLLBACK",
	}
	for status, want := range tests {
		if got, busy := busyAction(status); !busy || got != want {
			t.Errorf("%s: %q %v, want %q", status, got, busy, want)
		}
	}
	for _, status := range []string{"CREATE_COMPLETE", "CREATE_FAILED", "ROLLBACK_COMPLETE", "ROLLBACK_FAILED", "UPDATE_COMPLETE",
		"UPDATE_FAILED", "UPDATE_ROLLBACK_FAILED", "UPDATE_ROLLBACK_COMPLETE", "DELETE_FAILED", "IMPORT_COMPLETE", "IMPORT_ROLLBACK_FAILED", "IMPORT_ROLLBACK_COMPLETE"} {
		if _, busy := busyAction(status); busy {
			t.Errorf("%s counted as busy", status)
		}
	}
}

func TestStackIDFromARN(t *testing.T) {
	for arn, want := range map[string]string{
		"arn:aws:cloudformation:us-east-1:123456789012:stack/web/11111111-2222-3333-4444-555555555555": "11111111-2222-3333-4444-555555555555",
		"arn:aws:cloudformation:us-east-1:123456789012:stack/web":                                      "",
		"not-an-arn": "",
		"":           "",
	} {
		if got := StackIDFromARN(arn); got != want {
			t.Errorf("%q: %q, want %q", arn, got, want)
		}
	}
}
