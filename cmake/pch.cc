// The translation unit that builds the shared precompiled header (lms_pch in the top-level
// CMakeLists.txt); it has no code of its own.
