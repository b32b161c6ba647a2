/* lcms_wire.h -- the binding's webhook check, the single directed send, any
 * signed call and the client's metrics (engineer wire's files). */
#ifndef LCMS_WIRE_H
#define LCMS_WIRE_H
#include "lcms_compat.h"

/* commsease.verify_webhook{ secret=, headers=, body= [, max_age=] [, now=] } */
int lcms_verify_webhook(lua_State *L);

/* commsease.prometheus: pushes the function */
void lcms_push_prometheus(lua_State *L);
struct cms_stats;
/* client:stats(): pushes the counters as a table */
void lcms_push_stats(lua_State *L, const struct cms_stats *s);

#endif
