#ifndef SP_CLI_CLI_YAML_H
#define SP_CLI_CLI_YAML_H

#include <stdio.h>

#include <jansson.h>

/* Prints doc as one YAML document on f; -1 if the emitter failed. */
int	cli_yaml_print(FILE *f, json_t *doc);

#endif
