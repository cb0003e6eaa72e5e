/*
 * store_node: this machine's name (RELAYFORGE_NODE), recorded in every
 * request row by every store backend.  Part of the store's API (store.h)
 * but in a file of its own, so the configuration and the fuzz targets can
 * use it without linking the backends.
 */
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "store.h"

static char node_name[RF_STORE_NODE_MAX + 1];
static pthread_once_t node_once = PTHREAD_ONCE_INIT;

bool
rf_store_node_valid(const char *s)
{
	size_t n = s != NULL ? strlen(s) : 0;

	if (n < 1 || n > RF_STORE_NODE_MAX)
		return false;
	return strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
	    "0123456789._-") == n;
}

/* The host name in the node's alphabet. */
static void
node_default(void)
{
	char host[256] = "";

	if (node_name[0] != '\0')
		return;
	if (gethostname(host, sizeof host - 1) != 0 || host[0] == '\0')
		snprintf(host, sizeof host, "localhost");
	host[RF_STORE_NODE_MAX] = '\0';
	for (char *c = host; *c != '\0'; c++)
		if (!rf_store_node_valid((char[2]){ *c, '\0' }))
			*c = '_';
	/* host is cut to RF_STORE_NODE_MAX above; the precision says so to
	 * the compiler too (-O1 sees only host's 256 bytes). */
	snprintf(node_name, sizeof node_name, "%.*s", RF_STORE_NODE_MAX, host);
}

int
rf_store_set_node(const char *node)
{
	if (!rf_store_node_valid(node))
		return -1;
	pthread_once(&node_once, node_default);
	snprintf(node_name, sizeof node_name, "%s", node);
	return 0;
}

const char *
rf_store_node(void)
{
	pthread_once(&node_once, node_default);
	return node_name;
}

