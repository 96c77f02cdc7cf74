echo "from a template file: {{ params.greeting }} {{ task.task_id }}"
