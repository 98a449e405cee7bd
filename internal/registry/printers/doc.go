// Package printers gives the table columns "kubectl get" shows for each
// resource, the way upstream's server-side printers do.
//
// kubectl asks the API server for a table
// (Accept: application/json;as=Table;v=v1;g=meta.k8s.io) and prints what it
// gets: the column names, their order, which ones need -o wide and every
// cell's text come from the server. This package is the server's half: one
// Table per resource, with the columns, cell formatting and placeholders
// ("<none>", "<pending>", "<unknown>", "<unset>") of kubernetes'
// pkg/printers/internalversion, written against the external k8s.io/api
// types skiff stores.
//
// # Use
//
// The registry builds each resource's table once, with the clock ages are
// computed against (the zero Options use time.Now):
//
//	t := printers.For(schema.GroupResource{Resource: "pods"}, printers.Options{})
//	if t == nil {
//		t = printers.Default() // NAME, CREATED AT
//	}
//
// and the API server turns a stored object or list into the body of a
// meta.k8s.io/v1 Table response:
//
//	table, err := t.Convert(list, tableOptions.NoHeaders)
//
// Convert is Rows plus the list metadata; Rows is Row and Conditions for
// each item. A server that lays out its own rows calls Row (and
// Conditions) directly.
//
// For returns nil for resources upstream has no printer for (roles,
// clusterroles, limitranges, and anything unknown); Default is upstream's
// fallback for them. Resources lists what For knows.
//
// # Fidelity
//
// Upstream prints internal types converted from the stored versioned
// object. Where that conversion changes what a printer sees, the printers
// here apply the same rule to the versioned object: a pod's IP is
// status.podIP when set, else status.podIPs[0]; a service's cluster IP is
// spec.clusterIPs[0], else spec.clusterIP; a secret's data counts the keys
// of stringData too; an unset replica count prints as 0; an
// events.k8s.io/v1 Event prints as the core Event it converts to
// (regarding, note, deprecatedSource, deprecatedFirstTimestamp, ...).
//
// The server always asks upstream's printers for the wide form, so cells
// that upstream shortens only in narrow output (a load balancer's list of
// addresses) are never shortened here either; kubectl itself hides the
// Priority 1 columns unless asked for -o wide.
//
// Column types follow upstream even where the cell disagrees: CronJob's
// SUSPEND is declared "boolean" but holds "True", "False" or "<unset>";
// several count columns are declared "string" but hold integers.
package printers
