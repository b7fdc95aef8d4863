"""Local stand-ins for outside services that the real SDKs talk to over loopback HTTP."""
