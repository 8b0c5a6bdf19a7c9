#include <stddef.h>

#include "admin/handlers.h"

const struct admin_handler admin_handlers_kb[] = {
	{ NULL },
};
