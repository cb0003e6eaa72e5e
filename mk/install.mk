# `make install` / `make uninstall` (PREFIX=/usr/local, DESTDIR= for staging).
#
#   $(PREFIX)/lib/relayforge/          the responder, relayforge-spawn-fcgi
#   $(PREFIX)/share/relayforge/        schema/, web/ (Chart.js included)
#   $(PREFIX)/share/doc/relayforge/    README.md, deploy/ (every example)
#   /etc/relayforge/relayforge.conf    the settings template, mode 0600,
#                                      only when no such file exists
#
# The deploy examples are installed with their paths rewritten for PREFIX.
# uninstall removes what install put, never the settings file (it holds the
# keys) nor a store (/var/lib/relayforge).  See README.md, section Deployment.

INSTALL     ?= install
RF_LIBDIR   := $(PREFIX)/lib/relayforge
RF_DATADIR  := $(PREFIX)/share/relayforge
RF_DOCDIR   := $(PREFIX)/share/doc/relayforge
RF_ETCDIR   := /etc/relayforge
RF_EXAMPLES := lighttpd.conf lighttpd-cgi.conf apache-relayforge.conf \
               nginx-relayforge.conf nginx-relayforge-limits.conf \
               relayforge.socket relayforge.service relayforge.conf.example
RF_FIXPATHS := sed -e 's|/usr/local/lib/relayforge|$(PREFIX)/lib/relayforge|g' \
                   -e 's|PREFIX=/usr/local|PREFIX=$(PREFIX)|g' \
                   -e 's|/usr/local/share/doc/relayforge|$(PREFIX)/share/doc/relayforge|g'

.PHONY: install uninstall
install: all
	$(INSTALL) -d -m 0755 $(DESTDIR)$(RF_LIBDIR) $(DESTDIR)$(RF_DATADIR)/schema \
	    $(DESTDIR)$(RF_DATADIR)/web $(DESTDIR)$(RF_DOCDIR)/deploy
	$(INSTALL) -m 0755 $(BIN) $(DESTDIR)$(RF_LIBDIR)/relayforge.fcgi
	$(RF_FIXPATHS) deploy/relayforge-spawn-fcgi > $(DESTDIR)$(RF_LIBDIR)/relayforge-spawn-fcgi
	chmod 0755 $(DESTDIR)$(RF_LIBDIR)/relayforge-spawn-fcgi
	$(INSTALL) -m 0644 schema/*.sql $(DESTDIR)$(RF_DATADIR)/schema/
	@# web/ as a tree (vendor/chart.umd.min.js comes from the `web` target).
	find web -type d -exec $(INSTALL) -d -m 0755 '$(DESTDIR)$(RF_DATADIR)/{}' \;
	find web -type f -exec $(INSTALL) -m 0644 '{}' '$(DESTDIR)$(RF_DATADIR)/{}' \;
	@test -f $(DESTDIR)$(RF_DATADIR)/web/vendor/chart.umd.min.js || \
	    echo "install: warning: web/vendor/chart.umd.min.js is missing (apt-get install libjs-chart.js, then make web)"
	for f in $(RF_EXAMPLES); do \
	    $(RF_FIXPATHS) deploy/$$f > $(DESTDIR)$(RF_DOCDIR)/deploy/$$f || exit 1; \
	done
	$(RF_FIXPATHS) cgi-bin/.htaccess > $(DESTDIR)$(RF_DOCDIR)/deploy/htaccess.example
	cp $(DESTDIR)$(RF_LIBDIR)/relayforge-spawn-fcgi $(DESTDIR)$(RF_DOCDIR)/deploy/
	chmod 0644 $(DESTDIR)$(RF_DOCDIR)/deploy/*
	$(INSTALL) -m 0644 README.md $(DESTDIR)$(RF_DOCDIR)/README.md
	@# The settings file holds the keys: 0600, and never overwritten.
	$(INSTALL) -d -m 0755 $(DESTDIR)$(RF_ETCDIR)
	@if [ -e $(DESTDIR)$(RF_ETCDIR)/relayforge.conf ]; then \
	    echo "install: keeping the existing $(DESTDIR)$(RF_ETCDIR)/relayforge.conf"; \
	else \
	    $(INSTALL) -m 0600 deploy/relayforge.conf.example $(DESTDIR)$(RF_ETCDIR)/relayforge.conf; \
	fi

uninstall:
	rm -f $(DESTDIR)$(RF_LIBDIR)/relayforge.fcgi $(DESTDIR)$(RF_LIBDIR)/relayforge-spawn-fcgi
	rmdir $(DESTDIR)$(RF_LIBDIR) 2>/dev/null || true
	rm -rf $(DESTDIR)$(RF_DATADIR)/schema $(DESTDIR)$(RF_DATADIR)/web $(DESTDIR)$(RF_DOCDIR)/deploy
	rm -f $(DESTDIR)$(RF_DOCDIR)/README.md
	rmdir $(DESTDIR)$(RF_DATADIR) $(DESTDIR)$(RF_DOCDIR) 2>/dev/null || true
	@echo "uninstall: kept $(DESTDIR)$(RF_ETCDIR)/relayforge.conf (your keys) and any store under /var/lib/relayforge"
