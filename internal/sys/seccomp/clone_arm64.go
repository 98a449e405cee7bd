package seccomp

// cloneFlagsArg is the index of clone's flags argument.
const cloneFlagsArg = 0
