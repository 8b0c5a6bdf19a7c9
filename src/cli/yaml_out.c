/*
 * JSON documents printed as YAML with libyaml's emitter (`peer sync
 * report`): mappings in the document's key order, sequences, scalars.
 * Strings are emitted by the library, which quotes what needs quoting.
 */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <jansson.h>
#include <yaml.h>

#include "cli/cli_yaml.h"

static int
scalar(yaml_emitter_t *em, const char *s)
{
	yaml_event_t	ev;

	if (!yaml_scalar_event_initialize(&ev, NULL, NULL,
	    (yaml_char_t *)(uintptr_t)s, (int)strlen(s), 1, 1,
	    YAML_ANY_SCALAR_STYLE))
		return -1;
	return yaml_emitter_emit(em, &ev) ? 0 : -1;
}

static int
node(yaml_emitter_t *em, json_t *v)
{
	yaml_event_t	 ev;
	char		 buf[64];
	const char	*k;
	json_t		*x;
	size_t		 i;

	switch (json_typeof(v)) {
	case JSON_OBJECT:
		if (!yaml_mapping_start_event_initialize(&ev, NULL, NULL, 1,
		    YAML_BLOCK_MAPPING_STYLE) || !yaml_emitter_emit(em, &ev))
			return -1;
		json_object_foreach(v, k, x)
			if (scalar(em, k) != 0 || node(em, x) != 0)
				return -1;
		if (!yaml_mapping_end_event_initialize(&ev))
			return -1;
		return yaml_emitter_emit(em, &ev) ? 0 : -1;
	case JSON_ARRAY:
		if (!yaml_sequence_start_event_initialize(&ev, NULL, NULL, 1,
		    YAML_BLOCK_SEQUENCE_STYLE) || !yaml_emitter_emit(em, &ev))
			return -1;
		json_array_foreach(v, i, x)
			if (node(em, x) != 0)
				return -1;
		if (!yaml_sequence_end_event_initialize(&ev))
			return -1;
		return yaml_emitter_emit(em, &ev) ? 0 : -1;
	case JSON_STRING:
		return scalar(em, json_string_value(v));
	case JSON_INTEGER:
		snprintf(buf, sizeof(buf), "%lld",
		    (long long)json_integer_value(v));
		return scalar(em, buf);
	case JSON_REAL:
		snprintf(buf, sizeof(buf), "%g", json_real_value(v));
		return scalar(em, buf);
	case JSON_TRUE:
		return scalar(em, "true");
	case JSON_FALSE:
		return scalar(em, "false");
	default:
		return scalar(em, "");
	}
}

int
cli_yaml_print(FILE *f, json_t *doc)
{
	yaml_emitter_t	em;
	yaml_event_t	ev;
	int		r = -1;

	if (!yaml_emitter_initialize(&em))
		return -1;
	yaml_emitter_set_output_file(&em, f);
	yaml_emitter_set_unicode(&em, 1);
	if (!yaml_stream_start_event_initialize(&ev, YAML_UTF8_ENCODING) ||
	    !yaml_emitter_emit(&em, &ev) ||
	    !yaml_document_start_event_initialize(&ev, NULL, NULL, NULL, 1) ||
	    !yaml_emitter_emit(&em, &ev) || node(&em, doc) != 0 ||
	    !yaml_document_end_event_initialize(&ev, 1) ||
	    !yaml_emitter_emit(&em, &ev) ||
	    !yaml_stream_end_event_initialize(&ev) ||
	    !yaml_emitter_emit(&em, &ev))
		goto out;
	r = yaml_emitter_flush(&em) ? 0 : -1;
 out:
	yaml_emitter_delete(&em);
	return r;
}
