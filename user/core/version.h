/* version.h: kcache's version, and the memcached protocol level it speaks. */
#ifndef KC_VERSION_H
#define KC_VERSION_H

#define KC_VERSION "0.1.0"
/* Reported by `version` and `stats`: clients parse a memcached-style number first. */
#define KC_VERSION_STRING "1.6.0-kcache-" KC_VERSION

#endif
