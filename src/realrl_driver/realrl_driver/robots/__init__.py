"""The robots a driver can run, one subpackage each."""
