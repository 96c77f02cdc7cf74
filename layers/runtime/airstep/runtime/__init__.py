"""What runs in Lambda: the task runner, the metadata store and the gates between tasks."""
