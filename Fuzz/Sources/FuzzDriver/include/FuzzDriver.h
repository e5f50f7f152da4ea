// libFuzzer's driver, linked in by -sanitize=fuzzer. Each fuzz target has a Swift main that
// hands its test function to it (SwiftPM executables cannot leave main to libFuzzer).
#include <stddef.h>
#include <stdint.h>
int LLVMFuzzerRunDriver(int *argc, char ***argv, int (*UserCb)(const uint8_t *Data, size_t Size));
