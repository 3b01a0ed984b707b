// File: common/process.h
// Process-wide settings every fngate server (gateway or worker) wants before it starts threads.
#pragma once

namespace fngate {

// Ignores SIGPIPE (a peer gone mid-write is an error code, not a death) and turns off
// Abseil's mutex deadlock detection, which Debian's Abseil build leaves on: it takes a global
// lock on every mutex acquisition and showed up in the gateway's profile.
void PrepareServerProcess();

}  // namespace fngate
