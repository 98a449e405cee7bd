package manager

// NewWithControllers is New with another registration list, for tests of
// the manager itself.
var NewWithControllers = newManager
