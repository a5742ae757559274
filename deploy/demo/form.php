<?php
// A form that POSTs, with an optional file upload: PHP reads the body that paddock buffered.
$submitted = $_SERVER['REQUEST_METHOD'] === 'POST';
?><!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>form.php · paddock demo</title>
<link rel="stylesheet" href="/static/style.css"></head><body>
<header><img src="/static/paddock.svg" alt="" width="48" height="48"><h1>A form</h1></header>
<main>
<?php if ($submitted): ?>
  <p>Thank you, <strong><?= htmlspecialchars($_POST['name'] ?? '') ?></strong>.
     You wrote: <q><?= htmlspecialchars($_POST['message'] ?? '') ?></q></p>
  <?php if (!empty($_FILES['attachment']['name'])): ?>
    <p>Uploaded <code><?= htmlspecialchars($_FILES['attachment']['name']) ?></code>,
       <?= (int) $_FILES['attachment']['size'] ?> bytes, sha1
       <code><?= $_FILES['attachment']['error'] === 0 ? sha1_file($_FILES['attachment']['tmp_name']) : 'n/a' ?></code>.</p>
  <?php endif; ?>
<?php endif; ?>
<form method="post" enctype="multipart/form-data">
  <label>Name <input name="name" required></label>
  <label>Message <textarea name="message"></textarea></label>
  <label>Attachment <input type="file" name="attachment"></label>
  <button type="submit">Send</button>
</form>
<p><a href="/">Back</a></p>
</main></body></html>
