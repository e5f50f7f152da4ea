// Declarations only (include/FuzzDriver.h); the implementation is libFuzzer's.
#include "FuzzDriver.h"
