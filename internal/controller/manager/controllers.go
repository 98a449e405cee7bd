package manager

// builtins is the registration list: every controller the manager runs,
// built in this order (the order does not matter for correctness; each
// controller waits for its own caches). Add a controller with one line;
// see the package documentation for the convention.
func builtins() []Controller {
	return []Controller{}
}
