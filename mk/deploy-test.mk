# `make test-deploy`: the end-to-end test of every shipped deployment
# (tests/deploy/run.py: lighttpd, Apache mod_fcgid, nginx + spawn-fcgi,
# the systemd units, Apache and lighttpd CGI, .htaccess with mod_fcgid).
# Needs root: it installs missing servers with apt-get and runs them as
# www-data.  Ends with "RESULT <passed> <failed>".
.PHONY: test-deploy
test-deploy: deps
	@$(MAKE) --no-print-directory all
	@BIN=$(abspath $(BIN)) python3 tests/deploy/run.py
