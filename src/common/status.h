// Status and Result<T> live in the public API (include/stria/status.h).
#pragma once
#include "stria/status.h"
