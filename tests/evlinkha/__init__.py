"""EVLinkHA tests."""
