@extends('layout')

@section('title', 'Notes')

@section('body')
<h1>Notes on Laravel {{ app()->version() }}</h1>
@if (session('saved'))
<p class="flash">{{ session('saved') }}</p>
@endif
<dl>
  <dt>Boot</dt><dd id="boot">{{ $bootId }}</dd>
  <dt>Served</dt><dd id="served">{{ $served }}</dd>
  <dt>Visits</dt><dd id="visits">{{ $visits }}</dd>
  <dt>Rendered</dt><dd><time>{{ $now->format('Y-m-d H:i:s') }}</time></dd>
</dl>
<ul id="notes">
@forelse ($notes as $note)
  <li id="note-{{ $note->id }}">{{ $note->body }} <time>{{ $note->created_at->format('Y-m-d H:i:s') }}</time></li>
@empty
  <li>No notes yet.</li>
@endforelse
</ul>
<form method="post" action="{{ route('notes.store', [], false) }}">
  @csrf
  <input name="body"> <button>Add</button>
</form>
@endsection
