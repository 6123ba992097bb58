"""Tests of the automation blueprints in blueprints/automation/ev_cloud/."""
