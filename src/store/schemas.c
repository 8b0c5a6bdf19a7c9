/*
 * The schemas this binary knows, in the order they are migrated. A new
 * module adds its schema here (and its name below); store.c does not
 * change. The schema variables are defined in each module's *_schema.c.
 */
#include <stddef.h>

#include "store/store.h"

extern const struct store_schema store_core_schema, token_schema, ca_schema,
    kb_schema, authz_schema, peer_schema, va_schema, pub_schema;

const struct store_schema *const store_schemas[] = {
	&store_core_schema,
	&token_schema,
	&ca_schema,
	&kb_schema,
	&authz_schema,
	&peer_schema,
	&va_schema,
	&pub_schema,
	NULL,
};
